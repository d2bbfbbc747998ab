"""Live updates: one watcher per process looks at the ledger every second and tells open pages what changed.

However many pages are open, the database sees one small indexed read per interval (entries after the last
id seen), and none while nobody is watching. Each page holds a server-sent-events stream (`/live`); it hears
the ids of the leads changed by anyone, the viewer included, filtered to the leads the viewer may see, and
reloads the parts of the page that show them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from leadledger.services import leadquery
from leadledger.services.app import App
from leadledger.services.visibility import LeadScope

HEARTBEAT_SECONDS = 15.0


class LiveFeed:
    def __init__(self, app: App, *, interval: float = 1.0):
        self.app = app
        self.interval = interval
        self._listeners: set[asyncio.Queue[list[tuple[str, str | None, str | None]]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        for queue in list(self._listeners):
            queue.put_nowait([])  # wakes every stream so it can end

    async def _watch(self) -> None:
        last, _ = await run_in_threadpool(leadquery.changed_since, self.app, None)
        while self._listeners and not self._stopped:
            await asyncio.sleep(self.interval)
            try:
                last, changed = await run_in_threadpool(leadquery.changed_since, self.app, last)
            except Exception:  # a database hiccup must not end the watcher: try again next interval
                continue
            if changed:
                for queue in list(self._listeners):
                    queue.put_nowait(changed)
        self._task = None

    async def stream(self, scope: LeadScope) -> AsyncIterator[str]:
        """Server-sent events: `event: leads` with the changed lead ids the scope allows, and heartbeats."""
        queue: asyncio.Queue[list[tuple[str, str | None, str | None]]] = asyncio.Queue()
        self._listeners.add(queue)
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._watch())
        try:
            yield "retry: 3000\n\n"
            while not self._stopped:
                try:
                    changed = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                ids = list(dict.fromkeys(lead for lead, owner, team in changed if scope.allows(owner, team)))
                if ids:
                    yield f"event: leads\ndata: {' '.join(ids)}\n\n"
        finally:
            self._listeners.discard(queue)
            if not self._listeners and self._task is not None:
                with contextlib.suppress(Exception):
                    self._task.cancel()
                self._task = None
