"""SLA records rebuilt from recorded history, through the unit of work.

Live changes keep SLA clocks current as they happen (the unit of work steps them with `domain.timeline`).
History written in bulk (demo data, imports) has none until `rebuild` replays each lead's ledger and
activities through the same steps (`replay_slas`), with the same due times (the owner's team calendar) and
the same clock rows, and replaces the stored clocks in the same grouped write the live path uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial

from leadledger.domain.timeline import replay_slas
from leadledger.services.app import App
from leadledger.services.people import SYSTEM
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store import repository as repo
from leadledger.store.bulk import chunks

CHUNK = 5000


def rebuild(app: App, *, now: datetime | None = None, progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Recompute every lead's SLA clocks from its history (SLA records are derived data; the ledger is not)."""
    now = now or app.clock.now()
    with app.db.read() as conn:
        lead_ids = repo.lead_ids(conn)
    counts = Counter({"leads": 0, "clocks": 0, "breached": 0, "open": 0})

    def work(uow: UnitOfWork, chunk: list[str]) -> Counter[str]:
        found: Counter[str] = Counter()
        for lead_id, steps in uow.session.timelines(chunk).items():
            clocks = replay_slas(uow.model.slas, steps, uow.due_at, now)
            uow.replace_clocks(lead_id, clocks)
            found["clocks"] += len(clocks)
            found["breached"] += sum(1 for c in clocks if c.breached_at is not None)
            found["open"] += sum(1 for c in clocks if c.status == "open")
        return found

    for chunk in chunks(lead_ids, CHUNK):
        counts.update(in_unit_of_work(app, SYSTEM.name, partial(work, chunk=chunk)))
        counts["leads"] += len(chunk)
        if progress:
            progress(len(chunk))
    return dict(counts)
