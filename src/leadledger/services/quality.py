"""Data quality: leads that cannot be worked (seed 004's Invalid) found in the data, and proposed as Invalid.

A lead needs, at minimum, a name and a contact method (seed 000: an e-mail or a phone). An e-mail must be
an address (`email-validator`, syntax only: no DNS look-up), a phone a valid number (`phonenumbers`, with the
model's default region for numbers written without a country code). `scan_invalid` only reads; `apply_invalid`
moves the findings to Invalid through the normal change path (`change_leads`): the model's transitions,
roles, approvals and ledger apply as to any change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import phonenumbers
from sqlalchemy import select

from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.changes import ChangeSpec, Outcome
from leadledger.services.errors import ChangeRefused
from leadledger.services.leads import change_leads
from leadledger.store.tables import leads

CHUNK = 5_000
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SKIPPED_CATEGORIES = ("data_problem", "won")  # already Invalid/Duplicate, or Converted (locked)


@dataclass(frozen=True)
class Finding:
    """Why one lead cannot be worked: the problems found, the reason code to record, a detail for people."""

    lead_id: str
    status: str
    reason: str
    problems: tuple[str, ...]  # e.g. "email", "phone", "contact", "name"
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _phone_problem(text: str, region: str | None) -> str | None:
    if E164.match(text):
        number = phonenumbers.parse(text, None)
    else:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return f"phone {text!r} is not a phone number"
    if not phonenumbers.is_possible_number(number):
        return f"phone {text!r} cannot be a number (wrong length)"
    if not phonenumbers.is_valid_number(number):
        return f"phone {text!r} is not a valid number for its country"
    return None


def check_lead(model: StatusModel, region: str | None, name: Any, email: Any, phone: Any) -> list[tuple[str, str]]:
    """(problem, detail) for each thing wrong with a lead's identity and contact data."""
    found: list[tuple[str, str]] = []
    if not (name and str(name).strip()):
        found.append(("name", "no name"))
    email_text = str(email).strip() if email else ""
    phone_text = str(phone).strip() if phone else ""
    if not email_text and not phone_text:
        found.append(("contact", "no contact method (an e-mail or a phone is the minimum)"))
    if email_text:
        _, problem = model.fields["email"].parse(email_text)
        if problem:
            found.append(("email", f"e-mail {email_text!r}: {problem}"))
    if phone_text:
        problem = _phone_problem(phone_text, region)
        if problem:
            found.append(("phone", problem))
    return found


def _reason(problems: Sequence[str]) -> str:
    if "email" in problems:
        return "bad_email"
    if "phone" in problems:
        return "bad_phone"
    return "invalid_data"


def scan_invalid(app: App, *, progress: Callable[[int], None] | None = None) -> list[Finding]:
    """Every lead whose data makes it unworkable, with the reason to record (leads already Invalid, Duplicate
    or Converted are left out)."""
    model = app.loaded_model().model
    region = phone_region(app)
    skipped = [s.key for s in model.statuses.values() if s.category in SKIPPED_CATEGORIES]
    findings = []
    for rows in _chunks(app, skipped):
        for row in rows:
            found = check_lead(model, region, row.name, row.email, row.phone)
            if found:
                problems = tuple(p for p, _ in found)
                findings.append(
                    Finding(row.id, row.status, _reason(problems), problems, "; ".join(d for _, d in found))
                )
        if progress:
            progress(len(rows))
    return findings


def _chunks(app: App, skipped: Sequence[str]) -> Iterator[list[Any]]:
    after = ""
    while True:
        with app.db.read() as conn:
            query = (
                select(leads.c.id, leads.c.name, leads.c.email, leads.c.phone, leads.c.status)
                .where(leads.c.id > after, leads.c.status.not_in(list(skipped) or [""]))
                .order_by(leads.c.id)
                .limit(CHUNK)
            )
            rows = list(conn.execute(query))
        if not rows:
            return
        yield rows
        after = rows[-1].id


def phone_region(app: App) -> str | None:
    """The default region of the model (for numbers written without +country code)."""
    return app.loaded_model().source.phone_region


def apply_invalid(app: App, findings: Sequence[Finding], *, actor: str) -> list[Outcome]:
    """Move each finding's lead to Invalid with its reason and detail, through the normal change path.

    Each lead's change is judged on its own (a refusal or an approval does not stop the others)."""
    specs = [
        ChangeSpec(
            f.lead_id,
            status="invalid",
            reason=f.reason,
            fields={"invalid_detail": f.detail[:500]},
            note="data quality scan",
        )
        for f in findings
    ]
    return change_leads(app, specs, actor=actor)


def refused(outcomes: Sequence[Outcome]) -> list[ChangeRefused]:
    return [o for o in outcomes if isinstance(o, ChangeRefused)]
