"""Model versions side by side: load any stored version, and diff two of them (or a proposed file).

The CLI's `model diff`, `model apply` (which shows the diff first) and the API's /model/diff call these.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from leadledger.model.diff import ModelDiff, diff_models
from leadledger.model.loader import LoadedModel, load_text
from leadledger.services.app import App
from leadledger.services.errors import Invalid, NotFound
from leadledger.store import repository as repo
from leadledger.store.tables import model_versions


@dataclass(frozen=True)
class Version:
    """A model to compare: a stored version (with its id) or a proposed file (id None)."""

    loaded: LoadedModel
    label: str
    id: int | None = None


def stored_version(app: App, version_id: int) -> Version:
    """A stored model version by id (the model is compiled without loading holiday tables)."""
    with app.db.read() as conn:
        row = repo.model_row(conn, version_id)
    if row is None:
        raise NotFound(f"no model version {version_id}; `leadledger model history` lists them")
    loaded = load_text(row.text, f"model version {row.id}", check_holidays=False)
    return Version(loaded, f"version {row.id} ({row.name} v{row.version})", row.id)


def proposed_version(text: str, file: str) -> Version:
    """A model file that is not stored (yet): loaded and validated, errors naming its lines."""
    loaded = load_text(text, file)
    return Version(loaded, f"{file} ({loaded.model.name} v{loaded.model.version})")


def version_ids(app: App) -> list[int]:
    with app.db.read() as conn:
        return [int(r[0]) for r in conn.execute(select(model_versions.c.id).order_by(model_versions.c.id))]


def _previous(ids: list[int], version_id: int) -> int | None:
    earlier = [i for i in ids if i < version_id]
    return earlier[-1] if earlier else None


def diff(app: App, old: int | Version | None = None, new: int | Version | None = None) -> ModelDiff:
    """The changes from `old` to `new`.

    Defaults: `new` is the active version; `old` is the version stored before `new`, or the active version
    when `new` is a proposed file. A single stored version compared with nothing before it is an error.
    """
    ids = version_ids(app)
    if not ids:
        raise Invalid("no status model yet: run `leadledger init` first")
    if new is None:
        new = ids[-1]
    if old is None:
        if isinstance(new, Version):
            old = ids[-1]
        else:
            before = _previous(ids, new)
            if before is None:
                raise Invalid(f"version {new} is the first stored model: name a version or a file to compare with")
            old = before
    old_version = old if isinstance(old, Version) else stored_version(app, old)
    new_version = new if isinstance(new, Version) else stored_version(app, new)
    return diff_models(old_version.loaded, new_version.loaded, old_label=old_version.label, new_label=new_version.label)
