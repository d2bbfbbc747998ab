"""Status model versions: set up the database, replace the active model (linted first), keep every old one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update

from leadledger.domain.due import FLOOR
from leadledger.model.lint import Finding, LintEnvironment
from leadledger.model.loader import LoadedModel, default_model_text, load_text
from leadledger.services.app import App
from leadledger.services.errors import Forbidden, Invalid
from leadledger.store import repository as repo
from leadledger.store.db import migrate
from leadledger.store.tables import endpoints, leads, model_versions, teams, users

# Built in: `admin` is the first operator; `system` is the actor automation and time rules write as.
BUILTIN_USERS = (("admin", "ops"), ("system", "ops"))


class ModelRejected(Invalid):
    def __init__(self, findings: list[Finding]):
        self.findings = findings
        listed = "; ".join(f"{f.subject}: {f.message}" for f in findings if f.level == "error")
        super().__init__(f"the model has lint errors: {listed}")


def initialise(app: App, *, model_text: str | None = None, model_file: str = "default_model.yaml") -> dict[str, Any]:
    """Create or upgrade the schema, store the model (the default one if none is stored) and the built-in users."""
    migrate(app.db, model_of=lambda text: load_text(text, "stored model", check_holidays=False).model)
    now = app.clock.now()
    stored = None
    with app.db.write() as conn:
        for name, role in BUILTIN_USERS:
            if repo.user_row(conn, name) is None:
                conn.execute(insert(users).values(name=name, role=role, active=True, created_at=now))
        latest = repo.latest_model_id(conn)
    if latest is None or model_text is not None:
        stored = activate_model(app, text=model_text or default_model_text(), file=model_file, actor="admin")
    return {"database": app.db.url, "model": stored}


def lint_environment(app: App) -> LintEnvironment:
    """What lint checks against this database: registered endpoints, reps without a booking link."""
    with app.db.read() as conn:
        endpoint_names = frozenset(r.name for r in conn.execute(select(endpoints.c.name).where(endpoints.c.active)))
        team_links = {r.name: r.booking_url for r in conn.execute(select(teams.c.name, teams.c.booking_url))}
        reps = conn.execute(
            select(users.c.name, users.c.team, users.c.booking_url)
            .where(users.c.role == "rep", users.c.active.is_(True))
            .order_by(users.c.name)
        )
        missing = tuple(r.name for r in reps if not (r.booking_url or team_links.get(r.team or "")))
    return LintEnvironment(endpoints=endpoint_names, without_booking_url=missing)


def activate_model(app: App, *, text: str, file: str, actor: str) -> dict[str, Any]:
    """Make `text` the active model: it must load and lint without errors (warnings about this database's
    endpoints and booking links included, and its migrations against every stored version); the previous
    version is kept."""
    from leadledger.services.status_migrations import lint_with_history

    loaded: LoadedModel = load_text(text, file)
    findings = lint_with_history(app, loaded)
    if any(f.level == "error" for f in findings):
        raise ModelRejected(findings)
    with app.db.write() as conn:
        row = repo.user_row(conn, actor)
        if row is None or row.role != "ops" or not row.active:
            raise Forbidden("only ops may change the status model")
        result = conn.execute(
            insert(model_versions).values(
                name=loaded.model.name,
                version=loaded.model.version,
                digest=loaded.digest,
                text=text,
                created_at=app.clock.now(),
                created_by=actor,
            )
        )
        assert result.inserted_primary_key is not None
        new_id = result.inserted_primary_key[0]
        # the leads' due-at was computed with the old model's time rules and calendars: every lead is due, and
        # the next sweep judges each once with the new rules and moves its due-at forward
        conn.execute(update(leads).values(due_at=FLOOR))
    return {
        "id": new_id,
        "name": loaded.model.name,
        "version": loaded.model.version,
        "digest": loaded.digest,
        "warnings": [f.as_dict() for f in findings],
    }


def model_history(app: App) -> list[dict[str, Any]]:
    with app.db.read() as conn:
        return [row._asdict() for row in repo.model_history(conn)]
