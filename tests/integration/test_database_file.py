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


def test_every_file_the_command_line_creates_is_private_under_a_usual_umask(tmp_path: Path) -> None:
    """The analytics store (DuckDB) copies the ledger, field values included: its files are as private as the
    database's, whatever umask the shell had."""
    import subprocess
    import sys

    env = {**os.environ, "LEADLEDGER_DB": f"sqlite:///{tmp_path / 'leadledger.db'}",
           "LEADLEDGER_ANALYTICS_DB": str(tmp_path / "analytics.duckdb")}  # fmt: skip
    env.pop("LEADLEDGER_ACTOR", None)
    for args in (["init"], ["report", "funnel", "--format", "json"]):
        subprocess.run([str(Path(sys.executable).parent / "leadledger"), *args], env=env, cwd=tmp_path, check=True,
                       capture_output=True, preexec_fn=lambda: os.umask(0o022))  # fmt: skip
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in tmp_path.iterdir() if f.is_file()}
    assert "analytics.duckdb" in modes and "leadledger.db" in modes, modes
    assert set(modes.values()) == {0o600}, {name: oct(mode) for name, mode in modes.items()}


def test_the_server_factory_keeps_new_files_private(tmp_path: Path, monkeypatch) -> None:
    from leadledger.cli.server import create_server

    monkeypatch.setenv("LEADLEDGER_DB", f"sqlite:///{tmp_path / 'leadledger.db'}")
    previous = os.umask(0o022)
    try:
        create_server()
        (tmp_path / "made-by-the-server").write_text("x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "made-by-the-server").stat().st_mode) == 0o600
