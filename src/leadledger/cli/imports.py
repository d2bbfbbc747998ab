"""`leadledger import leads|history FILE`: CRM exports into the ledger, with a progress bar and a summary.

The commands only collect options and call `leadledger.importers.import_file`; exit 0 when the file was
processed (rejected rows are reported, not fatal), 1 when it could not be (or, with --strict, when any
row cannot be recorded).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from leadledger.cli.output import Format, console, emit, err_console, fail, print_json, progress
from leadledger.cli.state import State, actor_or_default
from leadledger.importers import ImportFailed, ImportSummary, import_file, list_runs

import_app = typer.Typer(
    help="Import leads and their history from another CRM: a generic CSV with a mapping file, Salesforce "
    "(Lead.csv, LeadHistory.csv) or HubSpot contacts.",
    no_args_is_help=True,
)

PresetOpt = Annotated[
    Optional[str], typer.Option("--preset", help="generic, salesforce or hubspot (default: the mapping's, or generic)")
]
MapOpt = Annotated[Optional[Path], typer.Option("--map", help="a mapping YAML file: columns, defaults, statuses...")]
RejectsOpt = Annotated[
    Optional[Path], typer.Option("--rejects", help="where rejected rows go (default: ./FILE.rejects.csv)")
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="any rejected row is fatal: then nothing is written")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="read, check and count; write nothing")]
ActorOpt = Annotated[
    Optional[str], typer.Option("--actor", help="who imports (an ops user; default $LEADLEDGER_ACTOR)")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table or json")]
FileArg = Annotated[Path, typer.Argument(help="the CSV export", exists=False)]


@import_app.command("leads")
def import_leads(
    file: FileArg,
    preset: PresetOpt = None,
    mapping: MapOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import a leads file: one lead per row, with its current status and owner (and stage dates, if any)."""
    _run("leads", file, preset, mapping, rejects, strict, dry_run, actor, fmt)


@import_app.command("history")
def import_history(
    file: FileArg,
    preset: PresetOpt = None,
    mapping: MapOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    dry_run: DryRunOpt = False,
    actor: ActorOpt = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Import a history file: status, stage and owner changes, recorded in time order per lead."""
    _run("history", file, preset, mapping, rejects, strict, dry_run, actor, fmt)


@import_app.command("runs")
def import_runs(limit: Annotated[int, typer.Option("--limit")] = 20, fmt: FormatOpt = Format.table) -> None:
    """The most recent imports: who ran them, on which file, and what they recorded."""

    runs = list_runs(State.app(), limit=limit)
    rows = []
    for run in runs:
        summary = run.get("summary") or {}
        rows.append(
            {
                "id": run["id"],
                "started_at": run["started_at"],
                "status": run["status"],
                "kind": run["kind"],
                "preset": run["preset"],
                "file": run["file"],
                "actor": run["actor"],
                **{k: summary.get(k) for k in ("read", "imported", "skipped", "rejected")},
            }
        )
    columns = [
        "id",
        "started_at",
        "status",
        "kind",
        "preset",
        "file",
        "actor",
        "read",
        "imported",
        "skipped",
        "rejected",
    ]
    emit(rows, columns, fmt, json_value=runs if fmt is Format.json else None)


def _run(
    kind: str,
    file: Path,
    preset: str | None,
    mapping: Path | None,
    rejects: Path | None,
    strict: bool,
    dry_run: bool,
    actor: str | None,
    fmt: Format,
) -> None:

    if fmt is Format.csv:
        fail("--format: table or json")
    with _progress_bars(file.name) as report:
        try:
            summary = import_file(
                State.app(),
                kind=kind,
                path=file,
                actor=actor_or_default(actor),
                preset=preset,
                mapping_path=mapping,
                rejects_path=rejects,
                strict=strict,
                dry_run=dry_run,
                progress=report,
            )
        except ImportFailed as exc:
            failed = exc.summary
            if failed is not None and fmt is Format.json:
                print_json({**failed.as_dict(), "ok": False, "error": str(exc)})
                raise SystemExit(1) from None
            if failed is not None:
                _show(failed)
            fail(str(exc))
            return
    if fmt is Format.json:
        print_json({**summary.as_dict(), "ok": True})
    else:
        _show(summary)


@contextmanager
def _progress_bars(name: str) -> Iterator[Any]:
    """One bar per phase (reading the file in bytes, then writing its facts), on a terminal only."""
    labels = {"reading": f"reading {name}", "checking": "checking rows", "writing": "writing the ledger"}
    with ExitStack() as stack:
        current: dict[str, Any] = {"phase": None, "advance": None, "done": 0}

        def report(phase: str, done: int, total: int) -> None:
            if phase != current["phase"]:
                stack.close()
                current.update(
                    phase=phase, done=0, advance=stack.enter_context(progress(labels.get(phase, phase), total))
                )
            current["advance"](done - current["done"])
            current["done"] = done

        yield report


def _show(summary: ImportSummary) -> None:
    """The summary as a user reads it: counts first, then why rows were rejected, then who is not a user."""
    title = f"{'dry run: ' if summary.dry_run else ''}{summary.kind} from {summary.file} ({summary.preset})"
    rows = [
        {"": "rows read", "count": summary.read},
        {"": "imported", "count": summary.imported},
        {"": "skipped (already recorded, or no change)", "count": summary.skipped},
        {"": "ignored (nothing for the ledger)", "count": summary.ignored},
        {"": "rejected", "count": summary.rejected},
        {"": "off-model moves recorded", "count": summary.off_model},
        {"": "leads created", "count": summary.leads_created},
        {"": "leads updated", "count": summary.leads_updated},
        {"": "initial states corrected", "count": summary.corrections},
        {"": "ledger entries", "count": summary.entries},
        {"": "leads without email or phone", "count": summary.incomplete},
    ]
    emit(rows, ["", "count"], Format.table, title=title)
    if summary.reject_reasons:
        emit(
            summary.reject_reasons,
            ["rows", "field", "reason"],
            Format.table,
            title=f"rejected -> {summary.rejects_file}",
        )
    if summary.ignored_reasons:
        ignored = [{"rows": n, "why": why} for why, n in summary.ignored_reasons.items()]
        emit(ignored, ["rows", "why"], Format.table, title="ignored")
    if summary.unknown_owners:
        owners = [{"owner": name, "entries": n} for name, n in summary.unknown_owners.items()]
        emit(owners, ["owner", "entries"], Format.table, title="owners who are not LeadLedger users (kept as named)")
    for note in summary.notes:
        err_console.print(f"note: {note}", markup=False, highlight=False)
    if summary.field_conflicts:
        err_console.print(
            f"note: {summary.field_conflicts} values in the file differ from LeadLedger's; LeadLedger's were kept",
            markup=False,
            highlight=False,
        )
    console.print(
        f"{summary.read} rows in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)"
        + (f"; run {summary.run}" if summary.run else ""),
        markup=False,
    )
