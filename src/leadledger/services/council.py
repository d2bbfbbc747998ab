"""The status council's pack as a service: who may read it, and the quarterly run the worker does.

Seed 000: "Create a status council: ops, sales management, and a few reps who meet quarterly". The pack shows
per-rep figures, so managers and ops read it (a rep sees it when the council shares it). The worker stores the
pack of each quarter once the quarter has ended and puts an inbox item in front of every ops user and manager.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from leadledger.analytics.council import council_pack
from leadledger.services.app import App
from leadledger.services.auth import require_role
from leadledger.services.errors import Invalid
from leadledger.services.people import SYSTEM
from leadledger.store.tables import notifications, users
from leadledger.store.tables_governance import council_packs

READERS = ("manager", "ops")
MAX_DAYS = 366


def pack(app: App, *, actor: str, date_from: date, date_to: date) -> dict[str, Any]:
    """The council pack for a period (at most a year): usage, overrides, rates, SLAs, spot-checks, flags,
    statuses that may not need to be separate, and what changed in the model."""
    from leadledger.services.review import check_period

    require_role(app, actor, READERS, "read the council pack")
    check_period(date_from, date_to)
    if (date_to - date_from).days >= MAX_DAYS:
        raise Invalid(f"a council pack covers at most {MAX_DAYS} days (a quarter is the usual)")
    return council_pack(app, date_from=date_from, date_to=date_to)


def quarter_of(day: date) -> tuple[date, date]:
    """(first day, last day) of the calendar quarter holding `day`."""
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    following = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
    return first, following - timedelta(days=1)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def quarterly_pack(app: App, *, now: datetime | None = None) -> dict[str, Any] | None:
    """The worker's job: once a quarter has ended, its pack is stored (once) and ops and managers are told.

    Returns what it stored, or None when the last ended quarter's pack is already there."""
    moment = (now or app.clock.now()).astimezone(UTC)
    first, last = quarter_of(quarter_of(moment.date())[0] - timedelta(days=1))  # the last quarter that has ended
    with app.db.read() as conn:
        done = conn.execute(
            select(council_packs.c.id).where(council_packs.c.date_from == first, council_packs.c.date_to == last)
        ).first()
        readers = [r[0] for r in conn.execute(
            select(users.c.name).where(users.c.role.in_(READERS), users.c.active.is_(True), users.c.name != SYSTEM.name)
            .order_by(users.c.name))]  # fmt: skip
    if done is not None:
        return None
    body = _jsonable(council_pack(app, date_from=first, date_to=last))
    label = f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    flagged = len(body["similar_statuses"]["proposed"]) + len(body["inconsistent_usage"]["flags"])
    with app.db.write() as conn:
        again = conn.execute(
            select(council_packs.c.id).where(council_packs.c.date_from == first, council_packs.c.date_to == last)
        ).first()
        if again is not None:  # another worker got there first
            return None
        result = conn.execute(
            insert(council_packs).values(
                date_from=first, date_to=last, created_at=moment, created_by=SYSTEM.name, pack=body
            )
        )
        assert result.inserted_primary_key is not None
        pack_id = int(result.inserted_primary_key[0])
        message = (
            f"The status council pack for {label} is ready ({flagged} findings to discuss): "
            f"`leadledger council pack --from {first} --to {last} --format html`, or council pack #{pack_id}."
        )
        if readers:
            conn.execute(
                insert(notifications),
                [{"recipient": r, "kind": "council_pack", "message": message, "created_at": moment} for r in readers],
            )
    return {"pack": pack_id, "quarter": label, "from": first, "to": last, "notified": readers}


def stored_packs(app: App, *, actor: str) -> list[dict[str, Any]]:
    """Packs the worker stored, newest first (without their bodies)."""
    require_role(app, actor, READERS, "read council packs")
    with app.db.read() as conn:
        rows = conn.execute(
            select(
                council_packs.c.id, council_packs.c.date_from, council_packs.c.date_to, council_packs.c.created_at
            ).order_by(council_packs.c.date_to.desc())
        )
        return [r._asdict() for r in rows]


def stored_pack(app: App, *, actor: str, pack_id: int) -> dict[str, Any]:
    from leadledger.services.errors import NotFound

    require_role(app, actor, READERS, "read council packs")
    with app.db.read() as conn:
        row = conn.execute(select(council_packs.c.pack).where(council_packs.c.id == pack_id)).first()
    if row is None:
        raise NotFound(f"no council pack #{pack_id}")
    body: dict[str, Any] = row.pack
    return body
