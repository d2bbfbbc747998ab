"""Tables of marketing's lasting state: what each segment's webhook has told its endpoint.

Membership itself is a function of the ledger and is never stored. What a webhook has *sent* is not: it is
the receiver's copy of the list. So each segment with a webhook keeps its watermark (when it was last
synced) and the leads its endpoint was last told are members. A sync diffs today's members against that
set, which stays right when entries arrive back-dated (an event with an earlier `occurred_at`, an import)
or the segment's definition changes, where diffing membership at two times would miss them. The messages,
the set and the watermark are written in one transaction, so a sync is queued once or not at all.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, PrimaryKeyConstraint, String, Table

from leadledger.store.tables import Id, UTCDateTime, metadata

segment_marks = Table(
    "segment_marks",
    metadata,
    Column("segment", String(100), primary_key=True),
    Column("watermark", UTCDateTime(), nullable=False),  # changes up to here are queued
    Column("updated_at", UTCDateTime(), nullable=False),
)

segment_hook_members = Table(
    "segment_hook_members",
    metadata,
    Column("segment", String(100), nullable=False),
    Column("lead_id", String(64), nullable=False),
    PrimaryKeyConstraint("segment", "lead_id"),
)

# Seed 000: several leads of one company all in Nurture -> flag the account for account-based review. One row
# per time the condition started to hold; the flag is up while `cleared_at` and `dismissed_at` are empty.
# A dismissed flag stays dismissed while the condition lasts; when it ends the row is cleared, and the next time
# the condition holds a new row is raised.
account_flags = Table(
    "account_flags",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account", String(320), nullable=False),  # domain.contacts.account_key
    Column("raised_at", UTCDateTime(), nullable=False),
    Column("leads", Integer, nullable=False),  # the open leads (all in Nurture) when it was raised
    Column("dismissed_at", UTCDateTime()),
    Column("dismissed_by", String(100)),
    Column("cleared_at", UTCDateTime()),  # the condition stopped holding
    Index("ix_account_flags_account", "account"),
)
