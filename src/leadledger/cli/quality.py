"""`leadledger quality ...`: leads that cannot be worked (Invalid) and leads that are one person (Duplicate)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from leadledger.cli.output import Format, console, emit, err_console, print_json, progress
from leadledger.cli.state import FormatOpt, State
from leadledger.config import Settings

quality_app = typer.Typer(
    help="Data quality: invalid e-mails, phones and missing contact data; duplicate leads.", no_args_is_help=True
)


@quality_app.command("scan")
def quality_scan(
    apply: Annotated[
        bool, typer.Option("--apply", help="move every finding to Invalid through the normal change path")
    ] = False,
    actor: Annotated[Optional[str], typer.Option("--actor", help="who applies (default: $LEADLEDGER_ACTOR)")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Leads without a name or a contact method, with an e-mail that is not an address or a phone that is not a
    number: each proposed as Invalid with its reason (bad_email, bad_phone, invalid_data) and what is wrong."""
    from leadledger.services.quality import apply_invalid, refused, scan_invalid

    app = State.app()
    with progress("leads checked", None) as advance:
        findings = scan_invalid(app, progress=advance)
    rows = [f.as_dict() | {"problems": ", ".join(f.problems)} for f in findings]
    result: dict = {"findings": [f.as_dict() for f in findings], "applied": 0, "refused": []}
    if apply and findings:
        outcomes = apply_invalid(app, findings, actor=actor or Settings().actor)
        failures = refused(outcomes)
        result["applied"] = len(outcomes) - len(failures)
        result["refused"] = [{"lead": r.lead_id, "violations": [v.as_dict() for v in r.violations]} for r in failures]
    if fmt is Format.json:
        print_json(result)
        return
    emit(rows, ["lead_id", "status", "reason", "problems", "detail"], fmt, title=f"{len(rows)} leads cannot be worked")
    if fmt is Format.table:
        if apply:
            console.print(f"moved {result['applied']} leads to Invalid", markup=False)
            for item in result["refused"]:
                problems = "; ".join(v["message"] for v in item["violations"])
                err_console.print(f"  {item['lead']}: refused: {problems}", markup=False, highlight=False)
        elif rows:
            console.print("run again with --apply to move them to Invalid", markup=False)


@quality_app.command("duplicates")
def quality_duplicates(
    exact_only: Annotated[bool, typer.Option("--exact-only", help="e-mail and phone matches only")] = False,
    name_threshold: Annotated[float, typer.Option("--name-threshold", help="0-100, similar names")] = 90.0,
    company_threshold: Annotated[float, typer.Option("--company-threshold", help="0-100, similar companies")] = 85.0,
    min_score: Annotated[float, typer.Option("--min-score", help="0-100: pairs scoring less are left out")] = 85.0,
    fmt: FormatOpt = Format.table,
) -> None:
    """Candidate duplicates: the same mailbox (case, dots and plus-addressing), the same phone (E.164), or a
    similar name at a similar company; each pair with its score and what matched, and the groups they form."""
    from leadledger.services.duplicates import find_duplicates

    with progress("leads read", None) as advance:
        scan = find_duplicates(
            State.app(),
            fuzzy=not exact_only,
            name_threshold=name_threshold,
            company_threshold=company_threshold,
            min_score=min_score,
            progress=advance,
        )
    if fmt is Format.json:
        print_json(scan.as_dict())
        return
    rows = [
        {
            "a": p.a,
            "b": p.b,
            "score": p.score,
            "matched": ", ".join(f"{k} {v}" for k, v in p.matched.items()),
            "conflicts": ", ".join(p.conflicts),
        }
        for p in scan.pairs
    ]
    emit(rows, ["a", "b", "score", "matched", "conflicts"], fmt,
         title=f"{len(scan.pairs)} candidate pairs in {len(scan.groups)} groups among {scan.leads} leads")  # fmt: skip
    if fmt is Format.table:
        for block in scan.skipped_blocks[:10]:
            err_console.print(
                f"note: {block['leads']} leads share {block['block']!r}: too common to compare by name",
                markup=False,
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    app.add_typer(quality_app, name="quality")


@quality_app.command("merge")
def quality_merge(
    survivor: Annotated[str, typer.Argument(help="the lead that stays")],
    duplicate: Annotated[str, typer.Argument(help="the lead that becomes its Duplicate")],
    note: Annotated[Optional[str], typer.Option("--note")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="who merges (default: $LEADLEDGER_ACTOR)")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Merge DUPLICATE into SURVIVOR: the survivor gets the fields it lacked (its own win; conflicts listed), the
    other becomes Duplicate of it; both ledgers are kept and the survivor's timeline shows the merged history."""
    from leadledger.services.merge import merge_leads

    result = merge_leads(
        State.app(), survivor=survivor, duplicate=duplicate, actor=actor or Settings().actor, note=note
    )
    if fmt is Format.json:
        print_json(result)
        return
    console.print(
        f"{duplicate} merged into {survivor}: filled {', '.join(result['filled']) or 'nothing'}", markup=False
    )
    for conflict in result["conflicts"]:
        console.print(
            f"  kept {conflict['field']} {conflict['kept']!r} (the merged lead had {conflict['other']!r})",
            markup=False,
            highlight=False,
        )


@quality_app.command("unmerge")
def quality_unmerge(
    duplicate: Annotated[str, typer.Argument(help="the lead that was merged into another")],
    note: Annotated[Optional[str], typer.Option("--note")] = None,
    actor: Annotated[Optional[str], typer.Option("--actor", help="who undoes it (default: $LEADLEDGER_ACTOR)")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Undo a merge by appended entries: the lead gets back its state from before, the survivor loses what the
    merge filled (where it is unchanged since)."""
    from leadledger.services.merge import unmerge

    result = unmerge(State.app(), duplicate=duplicate, actor=actor or Settings().actor, note=note)
    if fmt is Format.json:
        print_json(result)
        return
    console.print(
        f"{duplicate} is no longer merged into {result['survivor']}: back to {result['restored_status']}", markup=False
    )
