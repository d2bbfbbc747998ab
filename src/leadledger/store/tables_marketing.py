"""Tables of marketing's lasting state: what each segment's webhook has told its endpoint.

Membership itself is a function of the ledger and is never stored. What a webhook has *sent* is not: it is
the receiver's copy of the list. So each segment with a webhook keeps its watermark (when it was last
synced) and the leads its endpoint was last told are members. A sync diffs today's members against that
set, which stays right when entries arrive back-dated (an event with an earlier `occurred_at`, an import)
or the segment's definition changes, where diffing membership at two times would miss them. The messages,
the set and the watermark are written in one transaction, so a sync is queued once or not at all.
"""

from __future__ import annotations

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table

from leadledger.store.tables import UTCDateTime, metadata

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
