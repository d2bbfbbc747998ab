"""Import jobs of the web app: an uploaded CSV imported in a background thread, with its progress to watch.

`leadledger.importers.import_file` does the work, exactly as `leadledger import` does (role check, reject file,
run log); this module only holds the running jobs of this server process, their progress and their reject files
(in a private temporary folder per job, removed an hour after the job ends).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadledger.importers.service import ImportFailed, import_file
from leadledger.services.app import App
from leadledger.services.errors import ServiceError

KEEP_SECONDS = 3600.0
MAX_JOBS = 20


@dataclass
class ImportJob:
    id: str
    actor: str
    kind: str
    preset: str
    filename: str
    folder: Path
    dry_run: bool
    started: float = field(default_factory=time.time)
    ended: float | None = None
    phase: str = "queued"
    done: int = 0
    total: int = 0
    summary: dict[str, Any] | None = None
    error: str | None = None

    @property
    def source(self) -> Path:
        return self.folder / "upload.csv"

    @property
    def rejects(self) -> Path:
        return self.folder / "rejects.csv"

    @property
    def running(self) -> bool:
        return self.ended is None

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


class ImportJobs:
    def __init__(self, app: App):
        self.app = app
        self.jobs: dict[str, ImportJob] = {}
        self.lock = threading.Lock()

    def new(self, *, actor: str, kind: str, preset: str, filename: str, dry_run: bool) -> ImportJob:
        self._forget_old()
        folder = Path(tempfile.mkdtemp(prefix="leadledger-web-import-"))
        job = ImportJob(secrets.token_urlsafe(12), actor, kind, preset, filename[:200], folder, dry_run)
        with self.lock:
            self.jobs[job.id] = job
        return job

    def start(self, job: ImportJob, *, mapping: str | None, strict: bool) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            job.phase, job.done, job.total = phase, done, total

        def run() -> None:
            try:
                summary = import_file(self.app, kind=job.kind, path=job.source, actor=job.actor, preset=job.preset,
                                      mapping=mapping, rejects_path=job.rejects, strict=strict, dry_run=job.dry_run,
                                      progress=progress)  # fmt: skip
                job.summary = summary.as_dict()
            except ImportFailed as exc:
                job.error = str(exc)
                job.summary = exc.summary.as_dict() if exc.summary is not None else None
            except ServiceError as exc:
                job.error = str(exc)
            except Exception as exc:  # the job page says so; the server goes on
                job.error = f"the import stopped: {exc.__class__.__name__}"
            finally:
                job.ended = time.time()
                job.phase = "done"
                job.source.unlink(missing_ok=True)

        threading.Thread(target=run, name=f"import-{job.id}", daemon=True).start()

    def get(self, job_id: str) -> ImportJob | None:
        return self.jobs.get(job_id)

    def recent(self) -> list[ImportJob]:
        return sorted(self.jobs.values(), key=lambda j: -j.started)

    def _forget_old(self) -> None:
        with self.lock:
            now = time.time()
            old = [j for j in self.jobs.values() if j.ended is not None and now - j.ended > KEEP_SECONDS]
            old += sorted((j for j in self.jobs.values() if j.ended is not None), key=lambda j: j.started)[
                : max(0, len(self.jobs) - MAX_JOBS)
            ]
            for job in old:
                self.jobs.pop(job.id, None)
                shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        for job in list(self.jobs.values()):
            if job.ended is not None:
                shutil.rmtree(job.folder, ignore_errors=True)
