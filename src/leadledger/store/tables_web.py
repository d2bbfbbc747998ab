"""Tables of the web app: browser sessions (stored as a hash, like API tokens), each user's saved lead views,
and the site-wide switches ops sets.

A session cookie carries 32 random bytes; only their SHA-256 is stored, so a copy of the database opens no
session. `last_seen_at` is what idle expiry reads; it is refreshed at most once a minute per session, so
browsing does not turn every page view into a write.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text, UniqueConstraint, text

from leadledger.store.tables import Id, UTCDateTime, leads, ledger, metadata

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),  # absolute end, whatever the activity
    Column("ended_at", UTCDateTime()),  # logged out, or ended by a password change / disable
    Column("client", String(200)),  # the browser's User-Agent, cut: what a user sees in their session list
    # a digest of the password hash the session was opened with: a new password ends every older session
    Column("password_mark", String(64), nullable=False),
    Index("ix_web_sessions_user", "user"),
)

saved_views = Table(
    "saved_views",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user", String(100), ForeignKey("users.name"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("query", Text, nullable=False),  # the lead list's query string, as the filter form wrote it
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("user", "name"),
)

# Switches ops sets for the whole organisation (e.g. the status guide readable without logging in).
site_settings = Table(
    "site_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(100), nullable=False),
)

# A manager's lead list is their teams' leads, paged by id: (team, id) reads a page straight off the index.
TEAM_INDEX = Index("ix_leads_team_id", leads.c.team, leads.c.id)

# A manager's "overrides to review" reads the recent manual changes that overrode automation: few rows among
# millions, so a partial index holds only those.
OVERRIDES_INDEX = Index(
    "ix_ledger_overrides_at",
    ledger.c.at,
    sqlite_where=text("override_of_seq IS NOT NULL"),
    postgresql_where=text("override_of_seq IS NOT NULL"),
)
