"""Tables of governance: managers' verdicts on changes, monthly spot-check samples, and stored council packs.

A verdict judges a ledger entry ("was this status used as the guide defines it?"); it is not a change to the
lead, so it lives here and never in the ledger. Verdicts are appended, never edited: a manager who changes
their mind adds a newer verdict, and the latest one per entry counts.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB

from leadledger.store.tables import Id, UTCDateTime, metadata

Json = JSON().with_variant(JSONB(), "postgresql")
EntryId = BigInteger().with_variant(Integer(), "sqlite")

VERDICTS = ("ok", "wrong_usage")

review_samples = Table(
    "review_samples",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("month", String(7), nullable=False),  # YYYY-MM (UTC)
    Column("manager", String(100), nullable=False),  # whose reps' changes it samples
    Column("teams", Json, nullable=False),  # the teams it covered when drawn
    Column("per_rep", Integer, nullable=False),
    Column("seed", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    UniqueConstraint("month", "manager"),
)

review_sample_items = Table(
    "review_sample_items",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("sample_id", Id, ForeignKey("review_samples.id"), nullable=False),
    Column("entry_id", EntryId, ForeignKey("ledger.id"), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("entry_at", UTCDateTime(), nullable=False),
    Column("rep", String(100), nullable=False),
    Column("team", String(100)),
    Column("from_status", String(40)),
    Column("to_status", String(40), nullable=False),  # the stratum
    Column("stratum_changes", Integer, nullable=False),  # the rep's changes to this status that month
    UniqueConstraint("sample_id", "entry_id"),
    Index("ix_review_sample_items_entry_id", "entry_id"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_id", EntryId, ForeignKey("ledger.id"), nullable=False),
    Column("lead_id", String(64), nullable=False),
    Column("entry_at", UTCDateTime(), nullable=False),
    Column("rep", String(100)),  # who is accountable for the change: its actor if a rep, else the lead's owner
    Column("team", String(100)),
    Column("from_status", String(40)),
    Column("to_status", String(40), nullable=False),
    Column("verdict", String(16), nullable=False),  # ok | wrong_usage
    Column("note", Text),
    Column("reviewer", String(100), nullable=False),
    Column("reviewed_at", UTCDateTime(), nullable=False),
    Index("ix_reviews_entry_id", "entry_id"),
    Index("ix_reviews_rep_entry_at", "rep", "entry_at"),
)

council_packs = Table(
    "council_packs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("date_from", Date, nullable=False),
    Column("date_to", Date, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("pack", Json, nullable=False),
    Index("ix_council_packs_date_to", "date_to"),
)
