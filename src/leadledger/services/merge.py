"""Merging two leads that are one person, and undoing it: both ledgers kept, nothing edited.

A merge is two changes in one transaction through the normal change path (`changes.apply`: the model's
transitions, roles and approvals apply): the survivor gets the fields it lacked from the other lead (its own
values win; every conflict is listed) and records which lead was merged into it; the other lead becomes
Duplicate with `duplicate_of` naming the survivor. Neither ledger is copied or changed: the survivor's timeline
shows the merged lead's history beside its own, marked as merged (`merged_timelines`).

Undoing appends entries too: the duplicate gets back the status, stage and owner it had before the merge
(an `unmerge` entry: the model has no way out of Duplicate, and an undo is a restoration, not a new move),
and the survivor loses the fields the merge filled, where they still hold the merged values.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from leadledger.domain.changes import StatusChange
from leadledger.services.app import App
from leadledger.services.changes import Applied, ChangeSpec, apply, record
from leadledger.services.duplicates import duplicate_statuses
from leadledger.services.errors import ChangeRefused, Invalid, NotFound
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo
from leadledger.store.tables import leads

MERGED_FROM = "merged_from"  # on the survivor: the lead merged into it
MERGED_INTO = "merged_into"  # on the duplicate: the survivor
# bookkeeping fields that describe a lead's own history, never carried over to another lead
NOT_MERGED = frozenset({"duplicate_of", MERGED_FROM, MERGED_INTO, "approval_id", "requested_status",
                        "approval_rule", "decision", "invalid_detail"})  # fmt: skip


def _present(value: Any) -> bool:
    return value is not None and value != ""


def _must_apply(outcome: Any, what: str) -> Applied:
    if isinstance(outcome, ChangeRefused):
        raise outcome
    if not isinstance(outcome, Applied):
        raise Invalid(f"{what} waits for an approval: a merge must apply at once (approve it first, then merge)")
    return outcome


def merge_leads(app: App, *, survivor: str, duplicate: str, actor: str, note: str | None = None) -> dict[str, Any]:
    """Merge `duplicate` into `survivor`; returns the fields filled, the conflicts (survivor's value kept) and
    the ledger positions of the two entries. All or nothing: a refusal of either change writes neither."""
    if survivor == duplicate:
        raise Invalid("duplicate: a lead cannot be merged into itself")

    def work(uow: UnitOfWork) -> dict[str, Any]:
        uow.load([survivor, duplicate])
        resolved = duplicate_statuses(uow.model)
        for lead_id, role in ((survivor, "survivor"), (duplicate, "duplicate")):
            state = uow.states.get(lead_id)
            if state is None:
                raise NotFound(f"{role}: no lead {lead_id!r}")
            if state.status in resolved:
                raise Invalid(f"{role}: lead {lead_id} is already a duplicate (of {state.fields.get('duplicate_of')})")
        kept, other = uow.states[survivor].fields, uow.states[duplicate].fields
        filled = {k: v for k, v in other.items() if k not in NOT_MERGED and _present(v) and not _present(kept.get(k))}
        conflicts = [
            {"field": k, "kept": kept[k], "other": v}
            for k, v in sorted(other.items())
            if k not in NOT_MERGED and _present(v) and _present(kept.get(k)) and str(kept[k]) != str(v)
        ]
        said = f"; {note}" if note else ""
        described = f"merged {duplicate} into this lead: filled {', '.join(sorted(filled)) or 'nothing'}"
        if conflicts:
            described += f"; kept this lead's {', '.join(c['field'] for c in conflicts)}"
        first = apply(uow, ChangeSpec(survivor, fields={**filled, MERGED_FROM: duplicate}, note=described + said))
        applied_survivor = _must_apply(first, f"the change to {survivor}")
        second = apply(uow,
            ChangeSpec(
                duplicate,
                status=sorted(resolved)[0] if resolved else "duplicate",
                reason="duplicate",
                fields={"duplicate_of": survivor, MERGED_INTO: survivor},
                note=f"merged into {survivor}{said}",
            )
        )
        applied_duplicate = _must_apply(second, f"the change to {duplicate}")
        return {
            "survivor": survivor,
            "duplicate": duplicate,
            "filled": sorted(filled),
            "conflicts": conflicts,
            "survivor_seq": applied_survivor.seq,
            "duplicate_seq": applied_duplicate.seq,
        }

    return in_unit_of_work(app, actor, work)


def unmerge(app: App, *, duplicate: str, actor: str, note: str | None = None) -> dict[str, Any]:
    """Undo the merge of `duplicate`, by appended entries: it gets back its state from before the merge, and the
    survivor loses the fields the merge filled where they still hold the merged values."""

    with app.db.read() as conn:  # the ledger is append-only: what the merge wrote stays as read here
        history = repo.entries_for(conn, duplicate)
        merged_into = next((e.data.get(MERGED_INTO) for e in reversed(history) if e.data and MERGED_INTO in e.data), None)
        survivor_history = repo.entries_for(conn, merged_into) if merged_into else []

    def work(uow: UnitOfWork) -> dict[str, Any]:
        uow.load([duplicate])
        state = uow.states.get(duplicate)
        if state is None:
            raise NotFound(f"no lead {duplicate!r}")
        survivor = state.fields.get(MERGED_INTO)
        if state.status not in duplicate_statuses(uow.model) or not survivor or survivor != merged_into:
            raise Invalid(f"lead {duplicate} is not merged into another lead")
        merged_at = max(
            (e.seq for e in history if e.data and e.data.get(MERGED_INTO) == survivor and e.to_status == state.status),
            default=None,
        )
        if merged_at is None:
            raise Invalid(f"lead {duplicate}: the ledger holds no merge into {survivor}")
        before = next(e for e in history if e.seq == merged_at - 1)
        who = uow.who
        restored = StatusChange(
            lead_id=duplicate,
            at=max(uow.now, state.last_at),
            actor=who.name,
            actor_role=who.role,
            source="manual",
            from_status=state.status,
            to_status=before.to_status,
            from_stage=state.stage,
            to_stage=before.to_stage,
            from_owner=state.owner,
            to_owner=before.to_owner,
            note=f"merge into {survivor} undone" + (f"; {note}" if note else ""),
            fields={"duplicate_of": None, MERGED_INTO: None},
            kind="unmerge",
        )
        seq = record(uow, restored)  # a restoration: not judged, its kind says what it is
        survivor_seq = None
        uow.load([survivor])
        kept = uow.states.get(survivor)
        if kept is not None:
            merge_entry = max(
                (e for e in survivor_history if e.data and e.data.get(MERGED_FROM) == duplicate),
                key=lambda e: e.seq,
                default=None,
            )
            filled = {k: v for k, v in (merge_entry.data if merge_entry else {}).items() if k != MERGED_FROM}
            cleared = {k: None for k, v in filled.items() if str(kept.fields.get(k)) == str(v)}
            if kept.fields.get(MERGED_FROM) == duplicate:
                cleared[MERGED_FROM] = None
            if cleared:
                outcome = apply(uow,
                    ChangeSpec(survivor, fields=cleared, note=f"merge of {duplicate} undone: cleared what it filled")
                )
                survivor_seq = _must_apply(outcome, f"the change to {survivor}").seq
        return {"duplicate": duplicate, "survivor": survivor, "restored_status": before.to_status, "seq": seq,
                "survivor_seq": survivor_seq}  # fmt: skip

    return in_unit_of_work(app, actor, work)


def merged_timelines(app: App, lead_id: str) -> list[dict[str, Any]]:
    """The history of every lead merged into `lead_id` (and not unmerged): its ledger and activities, unchanged."""
    model = app.loaded_model().model
    resolved = sorted(duplicate_statuses(model))
    if not resolved:
        return []
    with app.db.read() as conn:
        candidates = conn.execute(
            select(leads.c.id, leads.c.fields).where(leads.c.status.in_(resolved)).order_by(leads.c.id)
        ).all()
        merged = [row.id for row in candidates if (row.fields or {}).get(MERGED_INTO) == lead_id]
        return [
            {
                "lead_id": other,
                "entries": [e._asdict() for e in repo.entries_for(conn, other)],
                "activities": [a._asdict() for a in repo.activities_for(conn, other)],
            }
            for other in merged
        ]
