"""Group commit: concurrent change requests share one transaction per round, each judged on its own.

A server takes requests concurrently, but a lead change alone costs a transaction (a few milliseconds with
its reads, automation and commit) and SQLite has one writer at a time, whose waiters sleep in its busy
handler: one change per transaction tops out near a hundred changes a second with a poor tail latency.
The `ChangeWriter` is one thread per process that takes every request waiting, applies them in one
unit of work in arrival order — each judged against the state the previous one left, exactly as
`change_leads` does — commits once, and answers every caller. A request's outcome is what it would have
been alone: a refused change writes nothing, changes to one lead apply in order, and when the shared
transaction fails, each request in it is run again in a transaction of its own, so one bad request cannot
fail its neighbours. Callers wait for the commit: an answer always describes durable state.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadledger.domain.changes import Actor
from leadledger.services import changes, telemetry
from leadledger.services.app import App
from leadledger.services.changes import Applied, ChangeSpec, Outcome
from leadledger.services.errors import ServiceError
from leadledger.services.leads import new_lead_id
from leadledger.services.unit_of_work import UnitOfWork, in_unit_of_work
from leadledger.store.session import deadlocked

MAX_BATCH = 256  # requests per transaction: bounds how long the last one in a round waits
_STOP = object()


@dataclass(frozen=True)
class ChangeJob:
    """Change one lead (status, stage, owner and/or fields) as `actor`."""

    actor: str
    spec: ChangeSpec


@dataclass(frozen=True)
class CreateJob:
    """Create one lead as `actor` (New, or Assigned when an owner is given)."""

    actor: str
    fields: Mapping[str, Any]
    owner: str | None = None
    stage: str | None = None
    at: datetime | None = None
    source: str = "manual"
    idempotency_key: str | None = None
    lead_id: str | None = None


Job = ChangeJob | CreateJob


@dataclass(frozen=True)
class Done:
    """A job's outcome and, when it applied, the lead's projection right after it (before later jobs)."""

    outcome: Outcome
    lead: dict[str, Any] | None = None


@dataclass
class _Pending:
    """A submitted job and whom to answer: a thread waiting on `future`, or a coroutine awaiting `waiter`."""

    job: Job
    future: Future[Done] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[Done] | None = None
    arrived: float = field(default_factory=time.perf_counter)  # for the change latency /metrics shows


Answer = Done | BaseException


class ChangeWriter:
    """One writer thread for an `App`: `submit` a job from any thread, or `await run(job)` from async code."""

    def __init__(self, app: App, *, max_batch: int = MAX_BATCH):
        self.app = app
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.rounds = 0  # transactions committed (for tests and the benchmark: how well requests coalesce)
        self.jobs = 0

    def submit(self, job: Job) -> Future[Done]:
        pending = _Pending(job, future=Future())
        self._enqueue(pending)
        assert pending.future is not None
        return pending.future

    def apply(self, job: Job) -> Done:
        return self.submit(job).result()

    async def run(self, job: Job) -> Done:
        """Await a job's outcome without a thread-safe future per request (the event loop is the hot path)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Done] = loop.create_future()
        self._enqueue(_Pending(job, loop=loop, waiter=waiter))
        return await waiter

    def close(self, timeout: float = 10.0) -> None:
        """Finish what was submitted, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)

    def _enqueue(self, pending: _Pending) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="leadledger-writer", daemon=True)
                    self._thread.start()
        self._queue.put(pending)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            round_ = [first]
            stop = False
            while len(round_) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                round_.append(item)
            _answer(self._execute(round_))
            if stop:
                return

    def _execute(self, round_: list[_Pending]) -> list[tuple[_Pending, Answer]]:
        try:
            results = self._commit(round_)
        except Exception as exc:
            if len(round_) == 1:
                return [(round_[0], exc)]
            answers: list[tuple[_Pending, Answer]] = []
            for pending in round_:  # isolate the request that broke the round
                answers.extend(self._execute([pending]))
            return answers
        self.rounds += 1
        self.jobs += len(round_)
        return list(zip(round_, results, strict=True))

    def _commit(self, round_: list[_Pending]) -> list[Done | ServiceError]:
        for attempt in range(3):
            try:
                return in_unit_of_work(self.app, round_[0].job.actor, lambda uow: _work(uow, round_))
            except Exception as exc:
                if not deadlocked(exc) or attempt == 2:
                    raise
        raise AssertionError("unreachable")


def _answer(answers: list[tuple[_Pending, Answer]]) -> None:
    """Settle thread futures directly, and each event loop's waiters with one wake-up for the whole round."""
    telemetry.observe_changes(
        (answer.outcome if isinstance(answer, Done) else answer, pending.arrived) for pending, answer in answers
    )
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Done], Answer]]] = {}
    for pending, answer in answers:
        if pending.future is not None:
            if isinstance(answer, BaseException):
                pending.future.set_exception(answer)
            else:
                pending.future.set_result(answer)
        elif pending.loop is not None and pending.waiter is not None:
            by_loop.setdefault(pending.loop, []).append((pending.waiter, answer))
    for loop, waiters in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed while the round ran: nobody waits any more
            loop.call_soon_threadsafe(_settle, waiters)


def _settle(waiters: list[tuple[asyncio.Future[Done], Answer]]) -> None:
    for waiter, answer in waiters:
        if waiter.done():  # the client went away and the request was cancelled
            continue
        if isinstance(answer, BaseException):
            waiter.set_exception(answer)
        else:
            waiter.set_result(answer)


def _work(uow: UnitOfWork, round_: list[_Pending]) -> list[Done | ServiceError]:
    """Apply each job of the round in order inside `uow`; a job's own error is its answer, not the round's."""
    uow.load(p.job.spec.lead_id for p in round_ if isinstance(p.job, ChangeJob))
    keys = [p.job.spec.idempotency_key if isinstance(p.job, ChangeJob) else p.job.idempotency_key for p in round_]
    uow.load_keys([k for k in keys if k])
    actors: dict[str, Actor | ServiceError] = {uow.who.name: uow.who}  # the unit of work resolved its own actor
    results: list[Done | ServiceError] = []
    for pending in round_:
        job = pending.job
        if job.actor not in actors:
            try:
                actors[job.actor] = uow.actor(job.actor)
            except ServiceError as exc:
                actors[job.actor] = exc
        who = actors[job.actor]
        if isinstance(who, ServiceError):
            results.append(who)
            continue
        outcome: Outcome
        if isinstance(job, ChangeJob):
            outcome = changes.apply(uow, job.spec, actor=who)
        else:
            created = changes.create(
                uow,
                lead_id=job.lead_id or new_lead_id(uow.now),
                fields=job.fields,
                owner=job.owner,
                stage=job.stage,
                at=job.at or uow.now,
                source=job.source,
                idempotency_key=job.idempotency_key,
                actor=who,
            )
            outcome = created
        lead = _snapshot(uow, outcome.lead_id) if isinstance(outcome, Applied) else None
        results.append(Done(outcome, lead))
    return results


def _snapshot(uow: UnitOfWork, lead_id: str | None) -> dict[str, Any] | None:
    if lead_id not in uow.leads:
        return None  # an idempotent replay: the lead was not loaded; the caller reads it
    data = uow.lead_row(lead_id)
    data["fields"] = dict(data.get("fields") or {})
    return data
