"""Tables of the REST API's security: bearer tokens and the inbound webhooks integrations sign.

Tokens are stored as their SHA-256 only (a token is 32 random bytes, so a fast hash is enough and a
stolen database does not hand out working tokens); the first characters are kept to tell tokens apart
in a list. Inbound webhook secrets must stay readable, like the outgoing `endpoints` secrets: verifying
an HMAC needs the secret itself. Four indexes on `leads` serve the API's filtered, id-ordered pages.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, String, Table, true

from leadledger.store.tables import Id, UTCDateTime, leads, metadata

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("name", String(100), nullable=False),  # what the token is for ("zapier", "login")
    Column("kind", String(16), nullable=False),  # api (made by `token create`) | login (from a password)
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("revoked_by", String(100)),
    Column("parent_id", Id),  # the login token (or its descendant) it was minted with: it dies with it
    Column("revoked_reason", String(100)),  # revoked | password changed | user disabled
    Index("ix_api_tokens_user", "user"),
)

inbound_hooks = Table(
    "inbound_hooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),  # the URL path: /api/v1/hooks/<name>
    Column("user", String(100), ForeignKey("users.name"), nullable=False),  # events are applied as this user
    Column("secret", String(200), nullable=False),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("previous_secret", String(200)),  # after `hook rotate`: still verifies until previous_until
    Column("previous_until", UTCDateTime()),
    Column("rotated_at", UTCDateTime()),
)

# `GET /api/v1/leads` pages by id under a filter: with (filter column, id) the database reads the next page
# straight off the index instead of sorting every matching lead (1 M leads: a 100,000-row sort per page).
LIST_INDEXES = (
    Index("ix_leads_status_id", leads.c.status, leads.c.id),
    Index("ix_leads_owner_id", leads.c.owner, leads.c.id),
    Index("ix_leads_stage_id", leads.c.stage, leads.c.id),
    Index("ix_leads_source_id", leads.c.source, leads.c.id),
)
