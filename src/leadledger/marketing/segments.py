"""Segments for marketing: definitions, members at any time, exports, and who entered or left between dates.

What the CLI (`leadledger segment ...`) and the REST API (`/segments`) call. Every answer is computed from
the ledger through the analytics store, as the reports are: `--as-of T` gives the audience as it was at T,
reproducibly (a campaign's audience on the day it was sent), never a snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from leadledger.analytics.context import Options, Query
from leadledger.analytics.store.connection import open_store
from leadledger.analytics.store.sync import sync as sync_store
from leadledger.domain.segments import Segment
from leadledger.marketing.membership import EXPORT_ATTRIBUTES, Builder
from leadledger.services.app import App
from leadledger.services.errors import Invalid

if TYPE_CHECKING:
    import duckdb

EXPORT_COLUMNS = (*EXPORT_ATTRIBUTES, "segment")
FETCH_ROWS = 10_000


def describe(segment: Segment) -> dict[str, Any]:
    """A segment's definition as data (what `segment list` and `GET /segments` show)."""
    return {
        "key": segment.key,
        "label": segment.label,
        "kind": segment.kind,
        "description": segment.description,
        "when": segment.when.source if segment.when is not None else None,
        "include": list(segment.include),
        "exclude": list(segment.exclude),
        "webhook": (
            {
                "endpoint": segment.webhook.endpoint,
                "on_enter": segment.webhook.on_enter,
                "on_leave": segment.webhook.on_leave,
            }
            if segment.webhook is not None
            else None
        ),
    }


@dataclass
class _Session:
    conn: duckdb.DuckDBPyConnection
    builder: Builder
    as_of: datetime


def _moment(app: App, as_of: datetime | None) -> datetime:
    moment = as_of or app.clock.now()
    if moment.tzinfo is None:
        raise Invalid("as_of: give a time zone (or Z for UTC)")
    if moment > app.clock.now():
        raise Invalid("as_of: the ledger cannot say who will be in a segment in the future")
    return moment.astimezone(UTC)


@contextmanager
def _session(app: App, as_of: datetime | None) -> Iterator[_Session]:
    """The analytics store, brought up to date, with the model's tables installed for the queries."""
    moment = _moment(app, as_of)
    model = app.loaded_model().model
    with open_store(app) as conn:
        sync_store(conn, app)
        Query(app, conn, model, Options.make(now=app.clock.now(), as_of=moment))  # installs smap, omap
        yield _Session(conn, Builder(model.segments, model.fields), moment)


def list_segments(app: App, *, as_of: datetime | None = None, counts: bool = True) -> dict[str, Any]:
    """Every segment of the active model, with its number of members at `as_of` (now by default)."""
    model = app.loaded_model().model
    rows = [describe(s) for s in model.segments.values()]
    moment = _moment(app, as_of)
    if counts and rows:
        with _session(app, moment) as session:
            keys = [row["key"] for row in rows]
            query = session.builder.counts(keys, moment)
            values = session.conn.execute(query.sql, query.params).fetchone() or ()
        for row, count in zip(rows, values, strict=True):
            row["members"] = int(count)
    return {"as_of": moment, "segments": rows}


def show_segment(app: App, key: str, *, as_of: datetime | None = None) -> dict[str, Any]:
    """A segment's definition and its members at `as_of`: how many, per status and per reason."""
    model = app.loaded_model().model
    segment = Builder(model.segments, model.fields).segment(key)
    with _session(app, as_of) as session:
        builder, conn = session.builder, session.conn
        total_query = builder.counts([key], session.as_of)
        (total,) = conn.execute(total_query.sql, total_query.params).fetchone() or (0,)
        groups: dict[str, list[dict[str, Any]]] = {}
        for by in ("status", "reason"):
            query = builder.counts([key], session.as_of, by=by)
            groups[by] = [
                {by: value, "members": int(count)}
                for value, count in conn.execute(query.sql, query.params).fetchall()
                if count
            ]
    return {
        **describe(segment),
        "as_of": session.as_of,
        "members": int(total),
        "by_status": sorted(groups["status"], key=lambda g: -g["members"]),
        "by_reason": sorted(groups["reason"], key=lambda g: -g["members"]),
    }


def export_rows(app: App, key: str, *, as_of: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The members at `as_of`, one dict per lead (`EXPORT_COLUMNS`), streamed from the store in chunks.

    The store stays open until the iterator is exhausted or closed."""
    with _session(app, as_of) as session:
        query = session.builder.members(key, session.as_of, EXPORT_ATTRIBUTES)
        result = session.conn.execute(query.sql, query.params)
        while True:
            chunk = result.fetchmany(FETCH_ROWS)
            if not chunk:
                return
            for row in chunk:
                item = dict(zip(EXPORT_ATTRIBUTES, row, strict=True))
                item["segment"] = key
                yield item


class Export:
    """A segment's members at `as_of` as a marketing tool imports them: text chunks to write as they come.

    CSV: a header, then one line per lead (`EXPORT_COLUMNS`, spreadsheet-safe cells); JSON: an array of one
    object per lead. The store writes each line, so Python only joins strings: memory stays flat and a million
    leads take seconds. `rows` counts the leads written so far. The store opens when iteration starts (an
    unknown segment is refused before the first chunk)."""

    def __init__(self, app: App, key: str, fmt: str, *, as_of: datetime | None = None):
        model = app.loaded_model().model
        Builder(model.segments, model.fields).segment(key)
        if fmt not in ("csv", "json"):
            raise Invalid(f"format: csv or json, not {fmt!r}")
        self.app, self.key, self.fmt, self.as_of = app, key, fmt, as_of
        self.rows = 0

    def __iter__(self) -> Iterator[str]:
        csv_out = self.fmt == "csv"
        with _session(self.app, self.as_of) as session:
            query = session.builder.export_lines(self.key, session.as_of, self.fmt)
            result = session.conn.execute(query.sql, query.params)
            yield ",".join(EXPORT_COLUMNS) + "\n" if csv_out else "["  # the header: fixed names, nothing to guard
            while chunk := result.fetchmany(FETCH_ROWS):
                if csv_out:
                    yield "\n".join([line for (line,) in chunk]) + "\n"
                else:
                    yield ("\n  " if not self.rows else ",\n  ") + ",\n  ".join([line for (line,) in chunk])
                self.rows += len(chunk)
        if not csv_out:
            yield "\n]\n" if self.rows else "]\n"


def member_page(
    app: App, key: str, *, as_of: datetime | None = None, after: str | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], datetime]:
    """One page of members at `as_of` (ids after `after`, in id order), and the time the page is as of."""
    with _session(app, as_of) as session:
        query = session.builder.members(key, session.as_of, EXPORT_ATTRIBUTES)
        sql = f"SELECT * FROM ({query.sql}) WHERE $after IS NULL OR id > $after ORDER BY id LIMIT $limit"
        rows = session.conn.execute(sql, {**query.params, "after": after, "limit": limit}).fetchall()
        return [dict(zip(EXPORT_ATTRIBUTES, row, strict=True)) for row in rows], session.as_of


def memberships(app: App, keys: Sequence[str] | None = None, *, as_of: datetime | None = None) -> dict[str, set[str]]:
    """The members of each of `keys` (every segment by default) at `as_of`, from one pass over the leads."""
    model = app.loaded_model().model
    wanted = list(keys) if keys is not None else list(model.segments)
    found: dict[str, set[str]] = {key: set() for key in wanted}
    if not wanted:
        return found
    with _session(app, as_of) as session:
        if len(wanted) == 1:  # the members only: a filter the store pushes into the conditions' joins
            query = session.builder.members(wanted[0], session.as_of, ordered=False)
            return {wanted[0]: {lead_id for (lead_id,) in session.conn.execute(query.sql, query.params).fetchall()}}
        query = session.builder.flags(wanted, session.as_of)
        # one list of ids per segment, built in the store: Python never walks a row per lead and segment
        lists = ", ".join(f'coalesce(list("id") FILTER (WHERE "m_{key}"), [])' for key in wanted)
        row = session.conn.execute(f"SELECT {lists} FROM ({query.sql})", query.params).fetchone()
    return {key: set(ids) for key, ids in zip(wanted, row or [[]] * len(wanted), strict=True)}


def segment_members(app: App, keys: Sequence[str], *, as_of: datetime | None = None) -> set[str]:
    """The ids of the leads in every one of `keys` at `as_of`: what the lead list's segment filter reads."""
    model = app.loaded_model().model
    builder = Builder(model.segments, model.fields)
    for key in keys:
        builder.segment(key)  # an unknown segment is refused, naming the field
    found = memberships(app, list(dict.fromkeys(keys)), as_of=as_of)
    return set.intersection(*found.values()) if found else set()


def segment_changes(app: App, key: str, *, since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """Who entered and who left `key` between `since` and `until` (now by default): members at `until` that were
    not at `since`, and the other way round, each with its export columns as at `until`."""
    start = _moment(app, since)
    with _session(app, until) as session:
        if session.as_of < start:
            raise Invalid("until: must not be before since")
        query = session.builder.changes(key, start, session.as_of, EXPORT_ATTRIBUTES)
        rows = session.conn.execute(query.sql, query.params).fetchall()
    entered: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    for change, lead, *values in rows:
        item = dict(zip(EXPORT_ATTRIBUTES, values, strict=True))
        item["id"] = lead
        (entered if change == "entered" else left).append(item)
    return {"segment": key, "since": start, "until": session.as_of, "entered": entered, "left": left}
