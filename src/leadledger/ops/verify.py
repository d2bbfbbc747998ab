"""`leadledger verify`: recompute every lead's hash chain from the ledger and name the first entry that breaks it.

What is checked, lead by lead in seq order (store/chain.py says how an entry is hashed):

* each entry's stored hash equals SHA-256(the previous entry's hash || the entry's content): an entry edited
  behind the service's back (any column, even a JSON key) fails here;
* the seq numbers run 1, 2, 3… without a gap or a repeat: a deleted entry, an inserted one, or entries
  re-ordered by swapping their seq fail here (or at the hash of the entry after them);
* the lead's stored head (`leads.chain_head`) and version equal its last entry's hash and seq: deleting a
  lead's last entries fails here, unless the projection was rewritten to match as well — which is why the
  README tells operators to keep the `chain digest` verify prints somewhere the database's users cannot write.

`--since ID|TIME` checks only the leads that have entries above that ledger id (or recorded at or after that
time), each one's whole chain: a quick daily check. The "first" entry reported is the one with the lowest
id among those that fail; the JSON output lists up to 20.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from leadledger.ops.export import parse_since
from leadledger.services.app import App
from leadledger.store import chain

BATCH = 10_000
_COLUMNS = ["id", "hash", *(name for name, _, _ in chain.HASHED)]


@dataclass
class Problem:
    entry_id: int | None
    lead_id: str
    seq: int | None
    what: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.entry_id, "lead_id": self.lead_id, "seq": self.seq, "problem": self.what}


@dataclass
class VerifyResult:
    leads: int = 0
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    digest: str = ""  # SHA-256 over every checked lead's last hash at `digest_at`, in lead id order
    digest_at: int = 0  # the ledger id the digest was taken at: `verify --at` it later gives the same digest
    since: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.entry_id is None, p.entry_id or 0, p.lead_id))

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {
            "ok": self.ok,
            "leads": self.leads,
            "entries": self.entries,
            "problems": len(self.problems),
            "first": first.as_dict() if first else None,
            "examples": [p.as_dict() for p in sorted(self.problems, key=lambda p: p.entry_id or 0)[:20]],
            "digest": self.digest,
            "digest_at": self.digest_at,
            "since": self.since,
        }


def verify(
    app: App,
    *,
    since: str | None = None,
    at: int | None = None,
    expect: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Check every chain (of the leads written since `since`); the digest is taken at ledger id `at` (default:
    the last entry), so a digest recorded earlier can be reproduced later, after more entries were written.
    `expect`: the digest recorded then; a different one now is a problem (history up to `at` was rewritten)."""
    result = VerifyResult(since=since)
    mark = parse_since(since)
    digest = hashlib.sha256()
    with app.db.engine.connect() as conn:
        if not app.db.is_sqlite:
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            heads = _lead_heads(conn, mark)
            lead_id: str | None = None
            previous: bytes | None = None
            anchored: bytes | None = None  # the hash of the lead's last entry at or below `at`
            expected_seq = 1
            last_id = 0
            broken = False

            def close_lead() -> None:
                if lead_id is None:
                    return
                stored = heads.pop(lead_id, None)
                if stored is not None and not broken:
                    head, version = stored
                    if _b(head) != previous or version != expected_seq - 1:
                        result.problems.append(Problem(None, lead_id, version,
                            f"the lead's head is entry {version} but its ledger ends at entry {expected_seq - 1}"
                            if version != expected_seq - 1 else "the lead's head does not match its last entry"))  # fmt: skip
                if anchored is not None:
                    digest.update(lead_id.encode() + b"\x1f" + anchored + b"\x1e")

            for row in _entries(conn, mark):
                values = dict(zip(_COLUMNS, row, strict=True))
                current: str = values["lead_id"]
                if current != lead_id:
                    close_lead()
                    lead_id, broken = current, False
                    result.leads += 1
                    previous, anchored, expected_seq = None, None, 1
                result.entries += 1
                last_id = max(last_id, values["id"])
                if progress and result.entries % BATCH == 0:
                    progress(BATCH)
                if broken:
                    continue
                seq = int(values["seq"])
                if seq != expected_seq:
                    what = (f"entry {expected_seq} is missing (deleted, or the entries were re-ordered)"
                            if seq > expected_seq else f"entry {seq} appears twice")  # fmt: skip
                    result.problems.append(Problem(values["id"], current, seq, what))
                    broken = True
                    continue
                stored_hash = _b(values["hash"])
                computed = chain.link(previous, values)
                if stored_hash != computed:
                    what = ("the entry has no hash (written outside the write path)" if stored_hash is None
                            else "the entry does not match its hash: edited, or not the entry that followed "
                                 "the previous one")  # fmt: skip
                    result.problems.append(Problem(values["id"], current, seq, what))
                    broken = True
                    continue
                previous, expected_seq = stored_hash, seq + 1
                if at is None or values["id"] <= at:
                    anchored = stored_hash
            close_lead()
            for missing, (_, version) in sorted(heads.items()):
                if version:
                    result.problems.append(Problem(None, missing, version, "the lead has no ledger entries left"))
    result.digest = digest.hexdigest()
    result.digest_at = at if at is not None else last_id
    if expect is not None and expect.strip().lower() != result.digest:
        result.problems.append(Problem(None, "", None, f"the chain digest at ledger id {result.digest_at} is "
                                       f"{result.digest}, not the one recorded ({expect.strip()}): entries up to "
                                       "there were rewritten, and their hashes recomputed to match"))  # fmt: skip
    return result


def _b(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _mark_filter(mark: int | datetime | None, sqlite: bool) -> tuple[str, list[Any]]:
    marker = "?" if sqlite else "%s"
    if mark is None:
        return "", []
    if isinstance(mark, int):
        return f"WHERE lead_id IN (SELECT lead_id FROM ledger WHERE id > {marker})", [mark]
    moment = mark.astimezone(UTC).replace(tzinfo=None)
    value: Any = moment.isoformat(" ", "microseconds") if sqlite else moment
    return f"WHERE lead_id IN (SELECT lead_id FROM ledger WHERE recorded_at >= {marker})", [value]


def _lead_heads(conn: Connection, mark: int | datetime | None) -> dict[str, tuple[Any, int]]:
    sqlite = conn.dialect.name == "sqlite"
    where, params = _mark_filter(mark, sqlite)
    where = where.replace("lead_id IN", "id IN", 1)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"SELECT id, chain_head, version FROM leads {where}", params)
        return {lead_id: (head, int(version)) for lead_id, head, version in cursor.fetchall()}
    finally:
        cursor.close()


def _entries(conn: Connection, mark: int | datetime | None) -> Iterator[tuple[Any, ...]]:
    """Ledger rows in (lead_id, seq) order, streamed (a server-side cursor on PostgreSQL)."""
    sqlite = conn.dialect.name == "sqlite"
    where, params = _mark_filter(mark, sqlite)
    listed = ", ".join(f'"{c}"' for c in _COLUMNS)
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor() if sqlite else raw.cursor(name="leadledger_verify")
    try:
        cursor.execute(f"SELECT {listed} FROM ledger {where} ORDER BY lead_id, seq", params)
        while True:
            rows = cursor.fetchmany(BATCH)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()

