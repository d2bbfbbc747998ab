"""`import_file`: a CRM export into the ledger - the one function the CLI (and later the API) calls.

Three passes, each bounded in memory: read the file row by row into facts (rows that cannot be recorded go
to the reject file with their row number and reason), group the facts by lead (`staging`), then write
lead by lead, a batch of whole leads per transaction. A lead is never half-written: a killed import
leaves the leads of committed batches complete and the rest untouched, and running it again adds only
what is missing (idempotency keys and lead ids recognise what is already there).
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from leadledger.importers import database as db
from leadledger.importers.facts import LEAD, Fact, RowProblem, to_micros
from leadledger.importers.mapping import KINDS, PRESETS, Mapping, load_mapping, mapping_text
from leadledger.importers.plan import LeadPlan, Planner
from leadledger.importers.reading import Columns, CsvFile, bind
from leadledger.importers.rejects import RejectFile
from leadledger.importers.rows import row_reader
from leadledger.importers.staging import FactStore
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid, ServiceError
from leadledger.store import due
from leadledger.store import repository as repo

IMPORT_ROLES = ("ops", "integration")
BATCH_LEADS = 5_000
BATCH_FACTS = 25_000
ATTEMPTS = 4
TOP = 10  # reasons and owners listed in the summary

# phase ("reading" in bytes, "checking" and "writing" in facts), done so far, total
Progress = Callable[[str, int, int], None]


class ImportFailed(ServiceError):
    """The file could not be imported (or, with strict, not every row could); `summary` says how far it got."""

    def __init__(self, message: str, summary: ImportSummary | None = None):
        super().__init__(message)
        self.summary = summary


@dataclass
class ImportSummary:
    """What an import read and what it recorded. `read` = imported + skipped + ignored + rejected."""

    file: str
    kind: str
    preset: str
    mapping: str | None
    dry_run: bool = False
    run: int | None = None
    read: int = 0  # data rows in the file
    imported: int = 0  # rows that recorded something
    skipped: int = 0  # rows already in the ledger (an earlier run, a duplicate row) or repeating its state
    ignored: int = 0  # rows with nothing for the ledger (deleted in the source, a field it does not track)
    rejected: int = 0  # rows that cannot be recorded: see the reject file
    off_model: int = 0  # entries recorded although today's model would not allow the move (flagged off_model)
    leads_created: int = 0
    leads_updated: int = 0
    corrections: int = 0  # initial states corrected by an appended entry
    entries: int = 0  # ledger entries appended
    incomplete: int = 0  # leads written without an email or phone (the data-quality report lists them)
    field_conflicts: int = 0  # file values that differ from LeadLedger's (LeadLedger's are kept)
    rejects_file: str | None = None
    reject_reasons: list[dict[str, Any]] = field(default_factory=list)
    ignored_reasons: dict[str, int] = field(default_factory=dict)
    unknown_owners: dict[str, int] = field(default_factory=dict)  # owners who are not LeadLedger users
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)  # reading, checking, writing

    @property
    def rows_per_second(self) -> float:
        return self.read / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows_per_second"] = round(self.rows_per_second)
        data["seconds"] = round(self.seconds, 3)
        return data


def list_runs(app: App, *, limit: int = 20) -> list[dict[str, Any]]:
    """The most recent import runs, newest first, with the summary each recorded."""
    with app.db.read() as conn:
        return db.list_runs(conn, limit)


def default_rejects_path(source: Path) -> Path:
    """`Lead.csv` -> `./Lead.rejects.csv`: next to where the user is, since the export's folder may be read-only."""
    return Path.cwd() / f"{source.stem}.rejects.csv"


def require_importer(app: App, actor: str) -> None:
    """Raise Forbidden unless `actor` may import (ops, integrations): checked before an upload is even read."""
    with app.db.read() as conn:
        who = repo.user_row(conn, actor)
    _check_importer(actor, who)


def _check_importer(actor: str, who: Any) -> None:
    if who is None or not who.active:
        raise Forbidden(f"unknown or disabled user {actor!r}")
    if who.role not in IMPORT_ROLES:
        raise Forbidden(f"{actor} is a {who.role}: imports write history for many leads, so only ops may run them")


def import_file(
    app: App,
    *,
    kind: str,
    path: Path,
    actor: str,
    preset: str | None = None,
    mapping_path: Path | None = None,
    mapping: str | None = None,
    rejects_path: Path | None = None,
    strict: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import a leads or history file; rejected rows are reported, not fatal (unless `strict`).

    Raises MappingError (the mapping or the header is wrong: nothing read), FileUnreadable, Forbidden, or
    ImportFailed (strict and some rows cannot be recorded: nothing written; the summary is attached).
    """
    started = time.perf_counter()
    if kind not in KINDS:
        raise Invalid(f"unknown import kind {kind!r} (one of: {', '.join(KINDS)})")
    if preset is not None and preset not in PRESETS:
        raise Invalid(f"unknown preset {preset!r} (one of: {', '.join(PRESETS)})")
    now = app.clock.now()
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        who = repo.user_row(conn, actor)
        people = db.load_users(conn)
    _check_importer(actor, who)
    assert who is not None
    text = mapping if mapping is not None else (mapping_text(mapping_path) if mapping_path is not None else None)
    compiled = load_mapping(model, kind=kind, preset_name=preset, text=text,
                            file=str(mapping_path) if mapping_path else None)  # fmt: skip
    source = CsvFile(path, encoding=compiled.encoding, delimiter=compiled.delimiter)
    try:
        columns = bind(compiled, source.header, source.name)
    except BaseException:
        source.close()
        raise
    summary = ImportSummary(file=str(path), kind=kind, preset=compiled.preset.name,
                            mapping=str(mapping_path) if mapping_path else None, dry_run=dry_run)  # fmt: skip
    summary.notes.extend(columns.ignored)
    job = _Import(app, compiled, columns, source, summary, actor=who.name, people=people, now_us=to_micros(now),
                  rejects=RejectFile(rejects_path or default_rejects_path(path), source.header), progress=progress)  # fmt: skip
    if not dry_run:
        with app.db.write() as conn:
            db.mark_interrupted(conn)
            summary.run = db.start_run(conn, kind=kind, preset=compiled.preset.name, file=str(path), mapping=text,
                                       actor=who.name, now=now)  # fmt: skip
    status = "failed"
    try:
        with _gc_paused():
            job.run(strict=strict, dry_run=dry_run)
        status = "done"
    finally:
        summary.seconds = time.perf_counter() - started
        job.close()
        if summary.run is not None:
            with app.db.write() as conn:
                db.finish_run(conn, summary.run, status=status, summary=summary.as_dict(), now=app.clock.now())
    return summary


@dataclass
class _Tally:
    """What one pass over the staged facts did (a strict run's check pass is thrown away)."""

    imported: int = 0
    skipped: int = 0
    off_model: int = 0
    entries: int = 0
    corrections: int = 0
    field_conflicts: int = 0
    leads_created: int = 0
    leads_updated: int = 0
    incomplete: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    unknown_owners: Counter[str] = field(default_factory=Counter)
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)  # row -> (field, reason)

    def add(self, plan: LeadPlan) -> None:
        rows, written = plan.rows, plan.written_rows
        if plan.rejected or plan.ignored:
            for row in rows:
                if row in plan.rejected:
                    self.rejected[row] = plan.rejected[row]
                elif row in written:
                    self.imported += 1
                elif row in plan.ignored:
                    self.ignored[plan.ignored[row]] += 1
                else:
                    self.skipped += 1
        else:  # the usual lead: its rows were written or skipped
            self.imported += len(written)
            self.skipped += len(rows) - len(written)
        self.off_model += plan.off_model
        self.entries += len(plan.entries)
        self.corrections += plan.corrections
        self.field_conflicts += plan.field_conflicts
        if plan.created:
            self.leads_created += 1
        elif plan.update is not None:
            self.leads_updated += 1
        if (plan.created or plan.update is not None) and plan.incomplete:
            self.incomplete += 1
        self.unknown_owners.update(plan.new_owners)


class _Import:
    """One import's state: the source, the staged facts, the reject file and the counts."""

    def __init__(
        self,
        app: App,
        mapping: Mapping,
        columns: Columns,
        source: CsvFile,
        summary: ImportSummary,
        *,
        actor: str,
        people: dict[str, tuple[str, str | None]],
        now_us: int,
        rejects: RejectFile,
        progress: Progress | None,
    ):
        self.app, self.mapping, self.columns, self.source, self.summary = app, mapping, columns, source, summary
        self.actor, self.people, self.now_us, self.rejects = actor, people, now_us, rejects
        self.progress = progress or (lambda phase, done, total: None)
        self.store = FactStore(source.size)
        self.ignored: Counter[str] = Counter()  # rows read but with nothing for the ledger

    def run(self, *, strict: bool, dry_run: bool) -> None:
        with self._phase("reading"):
            self.read()
        if strict and self.rejects.count:
            self.finish(_Tally())
            raise ImportFailed(self._strict_message(self.rejects.count), self.summary)
        if strict and not dry_run:
            with self._phase("checking"):
                check = self.write(dry_run=True, phase="checking")
            if check.rejected:
                self.finish(check, counts=False)
                raise ImportFailed(self._strict_message(len(check.rejected)), self.summary)
        with self._phase("writing"):
            tally = self.write(dry_run=dry_run, phase="writing")
        self.finish(tally)

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.summary.phase_seconds[name] = round(time.perf_counter() - started, 3)

    def _strict_message(self, rejected: int) -> str:
        return (f"{rejected} of {self.summary.read} rows cannot be recorded (see {self.rejects.path}); "
                "with --strict nothing was written")  # fmt: skip

    # --- pass 1: rows -> facts -------------------------------------------------------------------

    def read(self) -> None:
        reader = row_reader(self.mapping, self.columns, now_us=self.now_us)
        store, rejects, source = self.store, self.rejects, self.source
        read = 0
        for number, values in source.rows():
            read += 1
            try:
                facts = reader.facts(number, values)
            except RowProblem as problem:
                if problem.ignore:
                    self.ignored[problem.message] += 1
                else:
                    rejects.add(number, values, problem.field, problem.message)
                continue
            for fact in facts:
                store.add(fact)
            if read % 10_000 == 0:
                self.progress("reading", source.bytes_read, source.size)
        self.progress("reading", source.size, source.size)
        self.summary.read = read

    # --- pass 2 and 3: facts -> plans -> the database --------------------------------------------

    def write(self, *, dry_run: bool, phase: str) -> _Tally:
        with self.app.db.read() as conn:
            stamp = db.stamp_for(conn)
        planner = Planner(self.mapping.model, users=self.people, importer=self.actor, recorded_at=self.now_us,
                          stamp=stamp, create_leads=self.mapping.create_leads)  # fmt: skip
        tally = _Tally()
        done, total = 0, self.store.count
        for batch in _batches(self.store.groups()):
            for plan in self._write_batch(planner, batch, dry_run=dry_run):
                tally.add(plan)
            done += sum(len(facts) for _, facts in batch)
            self.progress(phase, done, total)
        return tally

    def _write_batch(self, planner: Planner, batch: list[tuple[str, list[Fact]]], *, dry_run: bool) -> list[LeadPlan]:
        """Read, plan and write whole leads in one transaction (their rows locked on PostgreSQL).

        A key another lead already holds fails the insert (a lead merged into another in the source can do
        that); the retry looks the batch's keys up first and rejects those rows.
        """
        ids = [lead for lead, _ in batch]
        brings_fields = any(fact.kind == LEAD or fact.data for _, facts in batch for fact in facts)
        look_up_keys = False
        for attempt in range(ATTEMPTS):
            try:
                transaction = self.app.db.read() if dry_run else self.app.db.write()
                with transaction as conn:
                    existing = db.load_existing(conn, ids, lock=not dry_run, fields=brings_fields)
                    taken = None
                    if look_up_keys:
                        taken = db.keys_taken(conn, [f.key for _, facts in batch for f in facts if f.key])
                    plans = [planner.plan(lead, facts, existing.get(lead), taken) for lead, facts in batch]
                    if not dry_run:
                        db.write_plans(conn, plans)
                        # the leads' due-at from their new state (the same function as the write path's)
                        written = [p.lead_id for p in plans if p.insert is not None or p.update is not None]
                        due.refresh(conn, self.mapping.model, written, None)
                return plans
            except db.WriteConflict:
                if attempt == ATTEMPTS - 1:
                    raise
                look_up_keys = True
        raise AssertionError("unreachable")

    # --- the end ---------------------------------------------------------------------------------

    def finish(self, tally: _Tally, *, counts: bool = True) -> None:
        """Rows rejected while planning join the reject file (read again from the source); then the summary."""
        if tally.rejected:
            again = CsvFile(self.source.path, encoding=self.mapping.encoding, delimiter=self.mapping.delimiter)
            try:
                for number, values in again.rows():
                    found = tally.rejected.get(number)
                    if found is not None:
                        self.rejects.add(number, values, *found)
            finally:
                again.close()
        summary = self.summary
        if counts:
            for name in ("imported", "skipped", "off_model", "entries", "corrections", "field_conflicts",
                         "leads_created", "leads_updated", "incomplete"):  # fmt: skip
                setattr(summary, name, getattr(tally, name))
            self.ignored.update(tally.ignored)
            summary.unknown_owners = dict(tally.unknown_owners.most_common(TOP))
            if len(tally.unknown_owners) > TOP:
                summary.notes.append(
                    f"{len(tally.unknown_owners)} owners are not LeadLedger users (the {TOP} most frequent are listed)"
                )
        summary.rejected = self.rejects.count
        summary.ignored = sum(self.ignored.values())
        summary.ignored_reasons = dict(self.ignored.most_common())
        summary.rejects_file = str(self.rejects.path) if self.rejects.written else None
        summary.reject_reasons = [
            {"field": field_name, "reason": reason, "rows": rows}
            for (field_name, reason), rows in self.rejects.reasons.most_common(TOP)
        ]
        self.rejects.close()

    def close(self) -> None:
        self.rejects.close()
        self.store.close()
        self.source.close()


def _batches(groups: Iterator[tuple[str, list[Fact]]]) -> Iterator[list[tuple[str, list[Fact]]]]:
    """Whole leads, about BATCH_LEADS or BATCH_FACTS per transaction, whichever comes first."""
    batch: list[tuple[str, list[Fact]]] = []
    facts = 0
    for lead, lead_facts in groups:
        batch.append((lead, lead_facts))
        facts += len(lead_facts)
        if len(batch) >= BATCH_LEADS or facts >= BATCH_FACTS:
            yield batch
            batch, facts = [], 0
    if batch:
        yield batch


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Collect rarely: millions of long-lived fact tuples would make every full collection rescan them all.

    Young objects are still collected (a cycle SQLAlchemy makes per batch does not pile up); the old
    generation is left alone until the import is done.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 1_000, 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.collect()
