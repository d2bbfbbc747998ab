"""The pipeline right now: leads per status and stage, read from the projection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from leadledger.services.app import App
from leadledger.store.tables import leads


def pipeline_counts(app: App) -> dict[str, Any]:
    """Counts per status (model order) and stage; statuses with no leads are listed with zero."""
    with app.db.read() as conn:
        model = app.loaded_model(conn).model
        result = conn.execute(
            select(leads.c.status, leads.c.stage, func.count()).group_by(leads.c.status, leads.c.stage)
        )
        counts: dict[tuple[str, str], int] = {(status, stage): n for status, stage, n in result}
    stages = [s.key for s in model.stages]
    known = list(model.statuses)
    extra = sorted({status for status, _ in counts} - set(known))  # statuses an older model had
    rows = []
    for key in known + extra:
        status = model.statuses.get(key)
        row: dict[str, Any] = {"status": key, "label": status.label if status else key}
        for stage in stages:
            row[stage] = counts.get((key, stage), 0)
        row["total"] = sum(n for (s, _), n in counts.items() if s == key)
        rows.append(row)
    return {"stages": stages, "rows": rows, "total": sum(counts.values())}
