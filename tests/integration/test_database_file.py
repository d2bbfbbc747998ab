"""The SQLite database holds password hashes, token hashes and webhook secrets: the file LeadLedger creates (and
its -wal and -shm companions) can be read by its owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from leadledger.bootstrap import build_app
from leadledger.services import hooks, models, people


def test_a_new_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a usual umask: files are world-readable unless created otherwise
    try:
        app = build_app(db_url=f"sqlite:///{tmp_path / 'data' / 'leadledger.db'}")
        models.initialise(app)
        people.add_user(app, name="zap", role="integration")
        hooks.add_hook(app, name="forms", user="zap")
        with app.db.engine.connect() as conn:  # while a connection is open the -wal and -shm files exist
            conn.exec_driver_sql("SELECT count(*) FROM inbound_hooks").all()
            files = sorted((tmp_path / "data").glob("leadledger.db*"))
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
        app.db.dispose()
    finally:
        os.umask(previous)
    assert "leadledger.db" in modes and "leadledger.db-wal" in modes, modes
    assert set(modes.values()) == {0o600}, {name: oct(mode) for name, mode in modes.items()}


def test_an_existing_file_keeps_the_permissions_its_owner_gave_it(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "shared.db"
    path.write_bytes(sqlite_template.read_bytes())
    path.chmod(0o640)
    app = build_app(db_url=f"sqlite:///{path}")
    assert app.loaded_model().model.name == "default"
    app.db.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
