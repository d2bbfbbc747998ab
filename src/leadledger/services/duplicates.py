"""Duplicate records: what `duplicate_of` may name, checked wherever a change or a creation sets it.

A Duplicate points at the record that survives (seed 004: "Duplicate - record should be merged or linked").
The pointer must lead somewhere real: an existing lead, not the lead itself, and not a lead that is itself a
duplicate (a chain, or two leads naming each other, would leave no survivor). The check runs in the write
transaction (`changes.apply`, `changes.create`), so every writer gets it: the CLI, the API, bulk changes and
event rules alike.
"""

from __future__ import annotations

import functools
import itertools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import phonenumbers
from anyascii import anyascii
from rapidfuzz import fuzz, process
from sqlalchemy import select

from leadledger.domain.changes import LeadState, Violation
from leadledger.domain.contacts import company_key, contact_keys
from leadledger.domain.statusmodel import StatusModel
from leadledger.services.app import App
from leadledger.services.unit_of_work import UnitOfWork
from leadledger.store.tables import leads

FIELD = "duplicate_of"


def duplicate_statuses(model: StatusModel) -> frozenset[str]:
    """The statuses that mean "this record duplicates another": data-problem statuses that require
    `duplicate_of` (the default model's Duplicate)."""
    return frozenset(
        s.key
        for s in model.statuses.values()
        if s.category == "data_problem" and (FIELD in s.entry.required or s.key == "duplicate")
    )


def check_duplicate_of(
    model: StatusModel,
    lead_id: str,
    fields: Mapping[str, Any],
    lookup: Callable[[str], LeadState | None],
) -> Violation | None:
    """The problem with the `duplicate_of` a change sets on `lead_id`, if any (`lookup` finds a lead's state)."""
    if FIELD not in fields or fields[FIELD] in (None, ""):
        return None
    target = str(fields[FIELD]).strip()
    if target == lead_id:
        return Violation(FIELD, "self", "a lead cannot be a duplicate of itself")
    found = lookup(target)
    if found is None:
        return Violation(FIELD, "not_found", f"no lead {target!r} to be a duplicate of")
    if found.status in duplicate_statuses(model):
        survivor = found.fields.get(FIELD)
        if survivor == lead_id:
            return Violation(FIELD, "cycle", f"lead {target} is itself a duplicate of this lead")
        hint = f": name the lead it duplicates ({survivor})" if survivor else ""
        return Violation(FIELD, "is_duplicate", f"lead {target} is itself a duplicate{hint}")
    return None


# --- one person, one lead: the check when a lead is created ---------------------------------------------------


@dataclass(frozen=True)
class ExistingContact:
    """The lead that already has a new lead's e-mail or phone (the survivor, when it matched a duplicate)."""

    lead_id: str
    version: int
    field: str  # email | phone
    value: str


def existing_contact(uow: UnitOfWork, fields: Mapping[str, Any]) -> ExistingContact | None:
    """The lead that already has the e-mail (same mailbox) or the phone (same number) in `fields`: among the leads
    this unit of work wrote (not stored yet), then one indexed look-up per key. Each key is held (PostgreSQL:
    an advisory lock) until the transaction ends, so two creations with one address cannot both pass."""
    keys = contact_keys(fields.get("email"), fields.get("phone"))
    resolved = duplicate_statuses(uow.model)
    session = uow.session
    for field_name, column in (("email", "email_key"), ("phone", "phone_key")):
        key = keys[column]
        if not key:
            continue
        value = str(fields[field_name])
        local = uow.lead_with_contact(column, key)
        if local is not None and uow.states[local].status not in resolved:
            return ExistingContact(local, uow.leads[local].projection.version, field_name, value)
        session.lock_contact(f"{column}:{key}")
        found = [
            lead for lead in session.leads_with_key(column, key)
            if lead.id not in uow.leads or uow.contact_key(lead.id, column) == key  # as this transaction left it
        ]  # fmt: skip
        alive = [lead for lead in found if lead.status not in resolved]
        if alive:
            return ExistingContact(alive[0].id, alive[0].version, field_name, value)
        for lead in found:  # only duplicates have it: the lead they duplicate is the person's record
            survivor = lead.fields.get(FIELD)
            head = session.lead_head(str(survivor)) if survivor else None
            if head is not None:
                return ExistingContact(head.id, head.version, field_name, value)
    return None


# --- finding duplicates ------------------------------------------------------------------------------------

NAME_THRESHOLD = 90.0  # rapidfuzz token_sort_ratio of the transliterated names
COMPANY_THRESHOLD = 85.0  # rapidfuzz ratio of the company keys
MIN_SCORE = 85.0  # pairs scoring less are not reported
CONFLICT_PENALTY = {"email": 20.0, "phone": 10.0}  # a fuzzy or phone match where both have different ones
MAX_BLOCK = 300  # a block this large is a common name at a big company, not evidence: compared no further
MAX_GROUP_PAIRS = 50  # an exact key shared by more leads lists each with the oldest, not every pair
CHUNK = 20_000
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_WORDS = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class Pair:
    """Two leads that look like one person: the score (0-100) and what matched (`exact`, or a similarity)."""

    a: str
    b: str
    score: float
    matched: dict[str, Any]
    conflicts: tuple[str, ...] = ()  # fields both have and that differ (two addresses: maybe two people)

    def as_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "score": self.score,
            "matched": self.matched,
            "conflicts": list(self.conflicts),
        }


@dataclass
class DuplicateScan:
    leads: int = 0
    pairs: list[Pair] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)
    skipped_blocks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "pairs": [p.as_dict() for p in self.pairs],
            "groups": self.groups,
            "skipped_blocks": self.skipped_blocks,
            "seconds": round(self.seconds, 3),
        }


def name_key(name: str | None) -> str:
    """Transliterated, lower case, words sorted: `Müller, José` and `Jose Mueller` come close."""
    if not name:
        return ""
    words = [w for w in _WORDS.split(anyascii(name).lower()) if w]
    return " ".join(sorted(words))


def phone_key(phone: str | None, region: str | None) -> str | None:
    """The number in E.164, or None when it is not a possible number."""
    if not phone:
        return None
    text = phone.strip()
    if _E164.match(text):
        return text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_DIGRAPHS = re.compile(r"(?<=[a-z])([aou])e")
_DOUBLED = re.compile(r"([a-z])\1+")


@functools.lru_cache(maxsize=200_000)
def _word_skeleton(word: str) -> str:
    return _DOUBLED.sub(r"\1", _DIGRAPHS.sub(r"\1", word))


def _skeleton(text: str) -> str:
    """A blocking key that survives transliteration and doubled letters: `mueller` and `muller` -> `muler`.

    Word by word (neither rule crosses a space), and words repeat (first names, family names, company
    words), so each distinct word is worked out once."""
    return " ".join([_word_skeleton(word) for word in text.split(" ")])


class _Groups:
    """Union-find over lead positions: pairs make groups (a merge proposal per group)."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while self.parent.get(x, x) != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def find_duplicates(
    app: App,
    *,
    fuzzy: bool = True,
    name_threshold: float = NAME_THRESHOLD,
    company_threshold: float = COMPANY_THRESHOLD,
    min_score: float = MIN_SCORE,
    progress: Callable[[int], None] | None = None,
) -> DuplicateScan:
    """Candidate duplicate pairs among the leads that are not Duplicates already.

    Exact: the same mailbox (`email_key`: case, dots and plus-addressing where the provider ignores them) or the
    same phone number (E.164). Fuzzy: similar transliterated names at similar companies, compared only within
    blocks (same company key and name start, or same name and company start) so the work grows with the
    leads, not with their square. A pair where both leads have different e-mail addresses (or phones) loses
    20 (10) points: two mailboxes are evidence of two people. Pairs under `min_score` are left out."""
    started = time.perf_counter()
    model = app.loaded_model().model
    region = app.loaded_model().source.phone_region
    resolved = sorted(duplicate_statuses(model))
    ids: list[str] = []
    emails: list[str | None] = []
    phones: list[str | None] = []
    names: list[str] = []
    companies: list[str] = []
    company_keys: dict[str | None, str] = {}  # companies repeat: each is normalised once
    after = ""
    while True:
        with app.db.read() as conn:
            rows = conn.execute(
                select(leads.c.id, leads.c.name, leads.c.email_key, leads.c.phone_key, leads.c.phone, leads.c.company)
                .where(leads.c.id > after, leads.c.status.not_in(resolved or [""]))
                .order_by(leads.c.id)
                .limit(CHUNK)
            ).all()
        if not rows:
            break
        for lead_id, name, stored_email, stored_phone, phone, company in rows:
            ids.append(lead_id)
            emails.append(stored_email)  # the row's own match keys (`domain.contacts.contact_keys`)
            # a number written without its country code has no stored key: read it in the default region
            phones.append(stored_phone or phone_key(phone, region))
            names.append(name_key(name))
            if company not in company_keys:
                company_keys[company] = company_key(company) or ""
            companies.append(company_keys[company])
        after = rows[-1][0]
        if progress:
            progress(len(rows))
    scan = DuplicateScan(leads=len(ids))
    found: dict[tuple[int, int], Pair] = {}
    groups = _Groups()

    def exact(values: list[str | None], label: str) -> None:
        by_key: dict[str, list[int]] = {}
        for index, key in enumerate(values):
            if key:
                by_key.setdefault(key, []).append(index)
        for members in by_key.values():
            if len(members) < 2:
                continue
            links = itertools.combinations(members, 2) if len(members) <= 10 else ((members[0], m) for m in members[1:])
            for a, b in links:
                pair = found.get((a, b))
                matched = {**(pair.matched if pair else {}), label: "exact"}
                found[(a, b)] = Pair(ids[a], ids[b], 100.0, matched, _conflicts(a, b, matched))

    def _conflicts(a: int, b: int, matched: dict[str, Any]) -> tuple[str, ...]:
        out = []
        if "email" not in matched and emails[a] and emails[b] and emails[a] != emails[b]:
            out.append("email")
        if "phone" not in matched and phones[a] and phones[b] and phones[a] != phones[b]:
            out.append("phone")
        return tuple(out)

    exact(emails, "email")
    exact(phones, "phone")
    if fuzzy:
        blocks: dict[tuple[str, str, str], list[int]] = {}
        company_blocks = {company: _skeleton(company) for company in set(companies)}
        for index, (name, company) in enumerate(zip(names, companies, strict=True)):
            if not name or not company:
                continue
            name_block, company_block = _skeleton(name), company_blocks[company]
            blocks.setdefault(("c", company_block, name_block.split(" ", 1)[0][:3]), []).append(index)
            blocks.setdefault(("n", name_block, company_block[:3]), []).append(index)
        for (_, first, second), members in blocks.items():
            if len(members) < 2:
                continue
            if len(members) > MAX_BLOCK:
                scan.skipped_blocks.append({"block": f"{first}|{second}", "leads": len(members)})
                continue
            block_names = [names[i] for i in members]
            block_companies = [companies[i] for i in members]
            for x in range(len(members) - 1):
                # names are already transliterated with their words sorted: a plain ratio is token_sort_ratio
                similar = process.extract(block_names[x], block_names[x + 1 :], scorer=fuzz.ratio,
                                          score_cutoff=name_threshold, limit=None)  # fmt: skip
                for _, name_score, offset in similar:
                    y = x + 1 + offset
                    company_score = fuzz.ratio(block_companies[x], block_companies[y])
                    if company_score < company_threshold:
                        continue
                    a, b = members[x], members[y]
                    key_ab = (a, b) if a < b else (b, a)
                    previous = found.get(key_ab)
                    if previous is not None and "name" in previous.matched:
                        continue
                    matched = {**(previous.matched if previous else {}), "name": round(name_score, 1),
                               "company": round(company_score, 1)}  # fmt: skip
                    score = 100.0 if previous else round(0.6 * name_score + 0.4 * company_score, 1)
                    found[key_ab] = Pair(ids[key_ab[0]], ids[key_ab[1]], score, matched, _conflicts(a, b, matched))
    kept: dict[tuple[int, int], Pair] = {}
    for positions, pair in found.items():
        if "email" not in pair.matched:
            # two different mailboxes (or numbers) are evidence of two people: the score says so
            penalty = CONFLICT_PENALTY.get("email", 0) * ("email" in pair.conflicts)
            penalty += CONFLICT_PENALTY.get("phone", 0) * ("phone" in pair.conflicts)
            pair = replace(pair, score=max(0.0, pair.score - penalty))
        if pair.score >= min_score:
            kept[positions] = pair
            groups.union(*positions)
    found = kept
    scan.pairs = sorted(found.values(), key=lambda p: (-p.score, p.a, p.b))
    clusters: dict[int, list[str]] = {}
    for index in sorted({i for pair in found for i in pair}):
        clusters.setdefault(groups.find(index), []).append(ids[index])
    scan.groups = sorted((g for g in clusters.values() if len(g) > 1), key=lambda g: g[0])
    scan.seconds = time.perf_counter() - started
    return scan
