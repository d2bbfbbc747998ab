"""The database tables (SQLAlchemy Core). The ledger is append-only; `leads` is its projection.

Times are stored as naive UTC and handed back as aware UTC, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT keys on PostgreSQL, but plain INTEGER on SQLite, where only INTEGER PRIMARY KEY is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing a naive datetime: times must carry their zone")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL on SQLite can hand back text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


teams = Table(
    "teams",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("calendar", String(64), nullable=False),
    Column("manager", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("booking_url", String(500)),  # the team's calendar link, when its reps have none of their own
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("team", String(100)),
    Column("email", String(320)),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("password_hash", String(255)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("booking_url", String(500)),  # where a lead books a meeting with this person ({owner.booking_url})
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("version", String(40), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
)

# Lead fields kept as columns (`CONTACT`); every other field lives in the JSON `fields` column. The
# projection (`PROJECTED`) is the state the lead's last ledger instant describes (domain.timeline.Projection).
CONTACT = {"contact": True}
PROJECTED = {"projection": True}
KEY = {"key": True}  # derived from the contact columns, for matching (domain.contacts)

leads = Table(
    "leads",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(300), info=CONTACT),
    Column("email", String(320), info=CONTACT),
    Column("phone", String(40), info=CONTACT),
    Column("company", String(300), info=CONTACT),
    Column("source", String(100), info=CONTACT),
    Column("campaign", String(200), info=CONTACT),
    Column("owner", String(100), info=PROJECTED),
    Column("team", String(100), info=PROJECTED),
    Column("status", String(40), nullable=False, info=PROJECTED),
    Column("stage", String(40), nullable=False, info=PROJECTED),
    Column("status_since", UTCDateTime(), nullable=False, info=PROJECTED),
    Column("stage_since", UTCDateTime(), nullable=False, info=PROJECTED),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False, info=PROJECTED),
    Column("version", Integer, nullable=False, info=PROJECTED),
    # what set the current status: lets a manual change be recorded as an override of a rule
    Column("status_entry_seq", Integer, info=PROJECTED),
    Column("status_source", String(16), info=PROJECTED),
    Column("status_rule", String(100), info=PROJECTED),
    Column("prev_status", String(40), info=PROJECTED),
    Column("reason", String(64), info=PROJECTED),
    Column("incomplete", Boolean, nullable=False, server_default=false()),
    Column("fields", Json),
    Column("email_key", String(320), info=KEY),  # the mailbox: case, dots and +tags as the provider reads them
    Column("phone_key", String(40), info=KEY),  # the number in E.164, when it is written with its country code
    Column("account_key", String(320), info=KEY),  # the account: normalised company, else a work e-mail domain
    # when a time rule could next fire for the lead (domain.due, a lower bound): the sweep reads only leads
    # whose due-at has come; NULL: no per-lead time rule can fire in its current stint
    Column("due_at", UTCDateTime()),
    # the hash of the lead's last ledger entry (store/chain.py); last of LEAD_COLUMNS: the importer appends it
    Column("chain_head", LargeBinary(32)),
    Index("ix_leads_status_stage", "status", "stage"),
    Index("ix_leads_email_key", "email_key"),
    Index("ix_leads_phone_key", "phone_key"),
    Index("ix_leads_account_key_status", "account_key", "status"),
    Index("ix_leads_owner_status", "owner", "status"),
    Index("ix_leads_source", "source"),
    Index("ix_leads_due_at", "due_at"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("actor_role", String(20), nullable=False),
    Column("source", String(16), nullable=False),
    Column("from_status", String(40)),
    Column("to_status", String(40), nullable=False),
    Column("from_stage", String(40)),
    Column("to_stage", String(40), nullable=False),
    Column("from_owner", String(100)),
    Column("to_owner", String(100)),
    Column("reason", String(64)),
    Column("note", Text),
    Column("data", Json),
    Column("rule", String(100)),
    Column("override_of_seq", Integer),  # seq of the automated entry on the same lead
    Column("override_rule", String(100)),
    Column("idempotency_key", String(200)),
    Column("off_model", Boolean, nullable=False, server_default=false()),
    Column("hash", LargeBinary(32)),  # SHA-256 of the entry and the lead's previous hash (store/chain.py)
    UniqueConstraint("lead_id", "seq"),
    Index(  # a key is its caller's: the same key from another caller is another request
        "uq_ledger_idempotency_key",
        "idempotency_key",
        "actor",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
)

activities = Table(
    "activities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(200)),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("actor", String(100)),
    Column("source", String(16), nullable=False),
    Column("data", Json),
    Index("ix_activities_lead_id_at", "lead_id", "at"),
    Index(  # an event id is its sender's: another caller's event with the same id is another event
        "uq_activities_key",
        "key",
        "actor",
        unique=True,
        sqlite_where=text("key IS NOT NULL"),
        postgresql_where=text("key IS NOT NULL"),
    ),
)

# --- automation: what entering a status or an event produces ------------------------------------------

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("title", String(500), nullable=False),
    Column("assignee", String(100)),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # open | done | cancelled
    Column("rule", String(100)),
    Column("done_at", UTCDateTime()),
    Column("done_by", String(100)),
    # the statuses the task is about (space-separated keys; sub-statuses count as their parent): the lead
    # leaving them closes the task; NULL for a task not tied to a status
    Column("open_while", String(500)),
    Column("note", Text),  # why it closed: the move that closed it, the lead ending, or a --no-change reason
    Index("ix_tasks_assignee_status", "assignee", "status"),
    Index("ix_tasks_lead_id", "lead_id"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("recipient", String(100), nullable=False),
    Column("lead_id", String(64)),
    Column("kind", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("read_at", UTCDateTime()),
    Column("rule", String(100)),
    Index("ix_notifications_recipient_read_at", "recipient", "read_at"),
)

# Messages to other systems, written in the same transaction as the change that caused them and
# delivered afterwards (at least once, each with a delivery id): nothing is lost if the process dies.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # webhook | email
    Column("topic", String(100), nullable=False),
    Column("target", String(320), nullable=False),  # endpoint name, or an e-mail address
    Column("payload", Json, nullable=False),
    Column("lead_id", String(64)),
    Column("rule", String(100)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | dead
    Column("last_error", Text),
    Column("delivered_at", UTCDateTime()),
    Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(200), nullable=False),  # signs deliveries (HMAC-SHA256); must be readable to sign
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("rule", String(100), nullable=False),
    Column("request", Json, nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # pending | approved | denied | failed
    Column("decided_by", String(100)),
    Column("decided_at", UTCDateTime()),
    Column("note", Text),
    Index("ix_approvals_status", "status"),
)

routing_state = Table(
    "routing_state",
    metadata,
    Column("pool", String(100), primary_key=True),
    Column("member", String(100), primary_key=True),
    Column("weight_state", Float, nullable=False),
    Column("assigned", Integer, nullable=False),
)

# --- time: SLA clocks and what the sweep has fired ---------------------------------------------------------

sla_clocks = Table(
    "sla_clocks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("lead_id", String(64), ForeignKey("leads.id"), nullable=False),
    Column("sla", String(100), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("due_at", UTCDateTime(), nullable=False),
    Column("responsible", String(100)),  # the owner when the clock started
    Column("team", String(100)),
    Column("status", String(16), nullable=False),  # open | met | breached | cancelled
    Column("closed_at", UTCDateTime()),
    Column("breached_at", UTCDateTime()),
    Index("ix_sla_clocks_status_due_at", "status", "due_at"),
    Index("ix_sla_clocks_lead_id", "lead_id"),
)

# One row per (rule, subject, stint): a time rule fires at most once per stay in a status.
rule_firings = Table(
    "rule_firings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rule", String(100), nullable=False),
    Column("subject", String(300), nullable=False),  # a lead id, or "company:<name>" for group rules
    Column("stint_seq", Integer, nullable=False),
    Column("sweep_id", String(64), nullable=False),
    Column("fired_at", UTCDateTime(), nullable=False),
    UniqueConstraint("rule", "subject", "stint_seq"),
    Index("ix_rule_firings_sweep_id", "sweep_id"),
)

Index("ix_leads_status_status_since", leads.c.status, leads.c.status_since)


# --- column lists: every writer takes its columns from here -----------------------------------------------


def written_columns(table: Table) -> tuple[str, ...]:
    """The columns a writer supplies, in table order: all but a generated integer key."""
    return tuple(c.name for c in table.columns if not (c.primary_key and c.autoincrement is True))


LEAD_COLUMNS = written_columns(leads)
CONTACT_COLUMNS = tuple(c.name for c in leads.columns if c.info.get("contact"))
PROJECTION_COLUMNS = tuple(c.name for c in leads.columns if c.info.get("projection"))
KEY_COLUMNS = tuple(c.name for c in leads.columns if c.info.get("key"))
LEDGER_COLUMNS = written_columns(ledger)
ACTIVITY_COLUMNS = written_columns(activities)
