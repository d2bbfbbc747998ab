"""What a source row says, in the importer's own terms: facts about one lead, and how times are read.

A row becomes one or more facts (a lead record, the moment a lead was created, a change of status, stage
or owner). Facts are plain tuples with times as integer microseconds since the epoch, so millions of them
travel through the staging files (`marshal`) cheaply and sort exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple

# Fact kinds, in the order facts of one lead at the same instant are applied.
LEAD = 0  # a lead record (leads files): contact fields, creation time, current status/stage/owner
CREATED = 1  # the moment a lead was created (Salesforce's `created` history row)
CHANGE = 2  # a status, stage and/or owner change

OWNER_BY_ID = 1  # flag: an owner change given by user id (Salesforce writes a second row with the names)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Fact(NamedTuple):
    """One thing a row says about one lead. `None` means "the row does not say"."""

    lead: str
    at: int  # microseconds since the epoch, UTC
    row: int  # the source row, for reject files and counts
    kind: int
    status: str | None = None
    stage: str | None = None
    owner: str | None = None
    old_status: str | None = None  # the value before the change, when the source records it (Salesforce)
    old_owner: str | None = None
    actor: str | None = None
    reason: str | None = None
    note: str | None = None
    key: str | None = None  # idempotency key: the same key is never recorded twice
    data: dict[str, Any] | None = None  # LEAD: the lead's fields; CHANGE: fields captured with the change
    flags: int = 0


class RowProblem(Exception):
    """A row that will not be recorded: rejected (it cannot be) or ignored (nothing in it for the ledger)."""

    def __init__(self, field: str, message: str, *, ignore: bool = False):
        super().__init__(message)
        self.field = field
        self.message = message
        self.ignore = ignore


def to_datetime(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


class TimeParser:
    """Reads a timestamp as exports write it: ISO 8601 (Salesforce's `2025-03-04T15:22:10.000+0000`,
    HubSpot's `2025-03-04 15:22`, a bare date), then each `time_formats:` entry; a time without a zone is
    in the mapping's `timezone:` (UTC when none is given).
    """

    def __init__(self, formats: Sequence[str], zone: tzinfo | None):
        self.formats = tuple(formats)
        self.zone = zone or UTC
        self.expected = "ISO 8601 (2025-03-04T15:22:10Z)" + (f" or {', '.join(self.formats)}" if self.formats else "")

    def __call__(self, text: str) -> int:
        """Microseconds since the epoch; raises ValueError saying what was expected."""
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = self._by_format(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return (moment - EPOCH) // MICROSECOND

    def _by_format(self, text: str) -> datetime:
        for fmt in self.formats:
            try:
                if fmt == "epoch_s":
                    return EPOCH + timedelta(seconds=float(text))
                if fmt == "epoch_ms":
                    return EPOCH + timedelta(milliseconds=float(text))
                return datetime.strptime(text, fmt)
            except (ValueError, OverflowError):
                continue
        raise ValueError(f"cannot read {text!r} as a time (expected {self.expected})")
