"""The ledger's hash chain: each entry's `hash` seals its content and the hash of the lead's previous entry.

    hash(seq 1) = SHA-256(content(entry 1))
    hash(seq n) = SHA-256(hash(seq n-1) || content(entry n))

One chain per lead, not one for the whole ledger: writers already serialise per lead (the lead row's lock and
version check), so chaining costs no extra lock and no contention between leads; the lead's current head is
kept on its row (`leads.chain_head`), so a writer needs no extra read. Editing an entry, deleting one,
inserting one or re-ordering entries breaks the chain at that entry (`leadledger verify` names it); deleting a
lead's last entries shows as a head that no longer matches. See ops/verify.py for what verify checks.

`content` covers every column of the ledger except `id` (assigned by the database after the hash is made)
and `hash` itself, taken from `tables.ledger`, so a column added later is covered without a change here. Each
value is written as `name 0x1f length 0x1f text` (length in characters), joined by 0x1e, encoded as UTF-8
once: a length prefix leaves no way to move text from one field into the next. NULL and false are left out (so a column added with a NULL or false
default does not change the hashes of the entries written before it); times are naive UTC ISO 8601 with
microseconds; JSON is re-encoded with sorted keys (PostgreSQL's jsonb does not keep key order) and an empty
object counts as NULL. Values may come as the writers hold them (aware datetimes, dicts) or as the drivers
hand them back (SQLite text, 0/1, NaN for NULL in bulk SQLite rows): both give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.types import JSON, DateTime

from leadledger.store.tables import ledger

GENESIS = b""
_TIME, _JSON, _BOOL, _PLAIN = range(4)
_sha256 = hashlib.sha256


def _kind(column: Any) -> int:
    if isinstance(column.type, DateTime) or isinstance(getattr(column.type, "impl", None), DateTime):
        return _TIME
    if isinstance(column.type, JSON):
        return _JSON
    if isinstance(column.type, Boolean):
        return _BOOL
    return _PLAIN


# (column name, kind, the name with its separator) in the table's column order
HASHED: tuple[tuple[str, int, str], ...] = tuple(
    (c.name, _kind(c), c.name + "\x1f") for c in ledger.columns if c.name not in ("id", "hash")
)
ENTRY_COLUMNS = tuple(name for name, _, _ in HASHED)  # every ledger column but id and hash, in table order
_SPEC = tuple((label, kind) for _, kind, label in HASHED)
_times: dict[Any, str] = {}


def _time_text(value: Any) -> str:
    cached = _times.get(value)
    if cached is not None:
        return cached
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    text = moment.isoformat(timespec="microseconds")
    if len(_times) > 100_000:  # a batch repeats its times (now, the change's time): a small memo is enough
        _times.clear()
    _times[value] = text
    return text


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__} as JSON")


def _json_text(value: Any) -> str | None:
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    if not value:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def content(entry: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """The canonical bytes of one entry: a mapping of column names to values (a missing column is NULL), or a
    row whose values are in `ENTRY_COLUMNS` order.

    Each value present is `name 0x1f length 0x1f text` (length in characters of the text), joined by 0x1e,
    then UTF-8 encoded once. Written for speed: it runs once per ledger row on every write path."""
    values = tuple(map(entry.get, ENTRY_COLUMNS)) if isinstance(entry, Mapping) else entry
    parts: list[str] = []
    append = parts.append
    for (label, kind), value in zip(_SPEC, values, strict=True):
        if value is None or value is False:
            continue
        if kind is _PLAIN:
            if value.__class__ is str:
                text = value
            elif value != value:  # NaN: a NULL in bulk SQLite rows
                continue
            else:
                text = str(value)
        elif kind is _TIME:
            if value != value:
                continue
            text = _time_text(value)
        elif kind is _JSON:
            found = _json_text(value) if value == value else None
            if found is None:
                continue
            text = found
        else:  # boolean: true (1) is written, false (0) left out
            if not value or value != value:
                continue
            text = "1"
        append(f"{label}{len(text)}\x1f{text}")
    return "\x1e".join(parts).encode()


def link(previous: bytes | None, entry: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """The entry's hash: it seals the entry's content and the previous entry's hash (None: the lead's first).

    The one place the chain is computed: every writer that appends ledger rows calls it (through `seal` or
    directly for rows it builds itself), and `leadledger verify` recomputes with it."""
    return _sha256((previous or GENESIS) + content(entry)).digest()


def seal(rows: list[dict[str, Any]], head_of: Callable[[str], bytes | None]) -> dict[str, bytes]:
    """Set `hash` on each entry (dicts, each lead's in seq order) with `link`; returns each lead's new head.

    `head_of(lead_id)` is the lead's current head (its last entry's hash), None for a new lead."""
    heads: dict[str, bytes] = {}
    for row in rows:
        lead_id = row["lead_id"]
        row["hash"] = heads[lead_id] = link(heads[lead_id] if lead_id in heads else head_of(lead_id), row)
    return heads
