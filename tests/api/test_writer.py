"""The change writer (group commit): concurrent jobs share transactions, each keeps its own outcome."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from leadledger.services import changes, people
from leadledger.services import leads as svc
from leadledger.services.app import App
from leadledger.services.errors import ChangeRefused, Forbidden
from leadledger.services.leads import ActivityIn, Applied, ChangeSpec
from leadledger.services.unit_of_work import UnitOfWork
from leadledger.services.writer import ChangeJob, ChangeWriter, CreateJob


def new_lead(app: App, n: int) -> str:
    return svc.create_lead(app, actor="admin", fields={"name": f"L{n}", "email": f"l{n}@example.com"}).lead_id


def test_jobs_submitted_together_commit_together_and_each_gets_its_outcome(app: App) -> None:
    leads = [new_lead(app, n) for n in range(6)]
    writer = ChangeWriter(app)
    entered, gate = threading.Event(), threading.Event()
    original = UnitOfWork.load

    def held_load(self: UnitOfWork, lead_ids: Any) -> None:  # the first round waits, so the rest queue up
        entered.set()
        gate.wait(10)
        original(self, lead_ids)

    try:
        UnitOfWork.load = held_load  # type: ignore[method-assign]
        first = writer.submit(ChangeJob("admin", ChangeSpec(leads[0], status="attempting_contact",
                                                            log=ActivityIn("email_sent"))))  # fmt: skip
        assert entered.wait(10)
        rest = [
            writer.submit(
                ChangeJob("admin", ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent")))
            )
            for lead_id in leads[1:5]
        ] + [writer.submit(ChangeJob("admin", ChangeSpec(leads[5], status="qualified")))]  # refused: not allowed
        gate.set()
        outcomes = [f.result(30).outcome for f in [first, *rest]]
    finally:
        UnitOfWork.load = original  # type: ignore[method-assign]
        writer.close()
    assert [type(o).__name__ for o in outcomes] == ["Applied"] * 5 + ["ChangeRefused"]
    assert writer.jobs == 6 and writer.rounds == 2  # the first alone, the five that waited in one transaction
    assert svc.get_lead(app, leads[5])["version"] == 1  # the refused one wrote nothing
    assert all(svc.get_lead(app, lead_id)["status"] == "attempting_contact" for lead_id in leads[:5])


def test_a_job_whose_actor_cannot_act_fails_alone(app: App) -> None:
    people.add_user(app, name="gone", role="manager")
    people.set_user_active(app, name="gone", active=False)
    lead_id = new_lead(app, 1)
    writer = ChangeWriter(app)
    try:
        jobs = [
            writer.submit(ChangeJob("gone", ChangeSpec(lead_id, fields={"company": "Nope"}))),
            writer.submit(ChangeJob("admin", ChangeSpec(lead_id, fields={"company": "Acme"}))),
            writer.submit(CreateJob("admin", {"name": "Kim", "email": "kim@example.com"})),
        ]
        with pytest.raises(Forbidden):
            jobs[0].result(30)
        changed, created = jobs[1].result(30), jobs[2].result(30)
    finally:
        writer.close()
    assert isinstance(changed.outcome, Applied) and changed.lead is not None and changed.lead["company"] == "Acme"
    assert isinstance(created.outcome, Applied) and created.lead is not None and created.lead["status"] == "new"


def test_a_round_that_breaks_is_retried_job_by_job(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected error in one job must not fail the others that shared its transaction."""
    leads = [new_lead(app, n) for n in range(3)]
    original = changes.apply

    def exploding(uow: UnitOfWork, spec: ChangeSpec, **kwargs: Any) -> Any:
        if spec.note == "boom":
            raise RuntimeError("boom")
        return original(uow, spec, **kwargs)

    monkeypatch.setattr(changes, "apply", exploding)
    writer = ChangeWriter(app)
    try:
        answers = writer_round(writer, [
            ChangeSpec(leads[0], fields={"company": "A"}),
            ChangeSpec(leads[1], fields={"company": "B"}, note="boom"),
            ChangeSpec(leads[2], fields={"company": "C"}),
        ])  # fmt: skip
    finally:
        writer.close()
    assert isinstance(answers[1], RuntimeError)
    assert [svc.get_lead(app, i)["company"] for i in leads] == ["A", None, "C"]


def writer_round(writer: ChangeWriter, specs: list[ChangeSpec]) -> list[Any]:
    futures = [writer.submit(ChangeJob("admin", spec)) for spec in specs]
    answers: list[Any] = []
    for future in futures:
        try:
            answers.append(future.result(30))
        except Exception as exc:
            answers.append(exc)
    return answers


def test_changes_to_one_lead_in_one_round_apply_in_order(app: App) -> None:
    lead_id = new_lead(app, 1)
    writer = ChangeWriter(app)
    try:
        answers = writer_round(writer, [
            ChangeSpec(lead_id, status="attempting_contact", log=ActivityIn("email_sent"), expected_version=1),
            ChangeSpec(lead_id, status="connected", log=ActivityIn("call_logged", data={"outcome": "connected"})),
            ChangeSpec(lead_id, fields={"company": "Late"}, expected_version=1),  # stale by now
        ])  # fmt: skip
    finally:
        writer.close()
    assert isinstance(answers[0].outcome, Applied) and isinstance(answers[1].outcome, Applied)
    assert isinstance(answers[2].outcome, ChangeRefused)
    assert [v.code for v in answers[2].outcome.violations] == ["stale"]
    assert svc.get_lead(app, lead_id)["status"] == "connected"
