"""Settings, read from the environment (prefix LEADLEDGER_) when asked for."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(f"LEADLEDGER_{name}") or default


@dataclass(frozen=True)
class Settings:
    # a SQLAlchemy URL; postgresql+psycopg://user@host/db in production
    db: str = field(default_factory=lambda: _env("DB", "sqlite:///leadledger.db"))
    # who the command line acts as when --actor is not given
    actor: str = field(default_factory=lambda: _env("ACTOR", "admin"))
    # a streaming replica the reports read from (the analytics store's sync); default: the database itself
    reports_db: str | None = field(default_factory=lambda: os.environ.get("LEADLEDGER_REPORTS_DB") or None)
    # smtp://[user:password@]host[:port][?starttls=1&from=leadledger@example.com]: e-mail notifications
    smtp: str | None = field(default_factory=lambda: os.environ.get("LEADLEDGER_SMTP") or None)
    # the web app: Secure cookies when served over HTTPS (behind a TLS proxy), and the idle time that ends a session
    web_secure: bool = field(
        default_factory=lambda: os.environ.get("LEADLEDGER_WEB_SECURE", "") in ("1", "true", "yes")
    )
    web_idle: str = field(default_factory=lambda: _env("WEB_IDLE", "30m"))


def keep_new_files_private() -> None:
    """Every file LeadLedger creates holds lead data or secrets (the SQLite database and its WAL, the analytics
    store's DuckDB file, WAL and spill files, exports, backups): the processes that run it (the CLI, the server
    and its workers) create them readable by their owner only, as PostgreSQL's server does (umask 077)."""
    os.umask(0o077)

