"""From a CSV row to facts: what one row of a leads file, a history file or Salesforce's LeadHistory says.

Everything that can be judged from the row alone is judged here, so a row that cannot be recorded (no
lead, an unmapped status, an unreadable or future time, a value too long for its column) is rejected
before anything is written, with the field and the reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import timedelta
from operator import itemgetter
from typing import Any

from leadledger.domain.engine import FUTURE_TOLERANCE
from leadledger.importers.facts import CHANGE, CREATED, LEAD, OWNER_BY_ID, Fact, RowProblem, TimeParser
from leadledger.importers.mapping import (
    FIELD_LIMITS,
    HISTORY_FIELDS,
    LEAD_FIELDS,
    Mapping,
    StatusTarget,
    fold,
    resolve_reason,
    resolve_stage,
    resolve_status,
)
from leadledger.importers.reading import Columns
from leadledger.store.tables import CONTACT_COLUMNS

TRUE_VALUES = frozenset({"true", "1", "yes", "y", "t", "x"})
SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
FUTURE_TOLERANCE_US = FUTURE_TOLERANCE // timedelta(microseconds=1)  # a fact may be a little ahead of our clock


class RowReader:
    """Turns rows into facts for one mapping bound to one file; subclasses know what a row means."""

    def __init__(self, mapping: Mapping, columns: Columns, *, now_us: int):
        self.mapping = mapping
        self.model = mapping.model
        self.columns = columns
        self.positions = columns.positions
        self.width = len(columns.header)
        self.now_us = now_us
        self.parse_time = TimeParser(mapping.time_formats, mapping.timezone)
        # fields with a meaning of their own; any other mapped name is a custom field kept on the lead
        if mapping.kind == "leads":
            reserved = set(LEAD_FIELDS)
        else:
            reserved = set(HISTORY_FIELDS) | set(mapping.preset.columns.get("history", {}))
        self.custom = tuple(name for name in self.positions if name not in reserved)
        self.custom_defaults = tuple(
            (name, value)
            for name, value in mapping.defaults.items()
            if name not in reserved and name not in self.positions
        )
        self._getters: dict[str, Callable[[list[str]], str]] = {}
        deleted = self.getter("deleted")
        self.is_deleted = (
            (lambda values: deleted(values).casefold() in TRUE_VALUES) if "deleted" in self.positions else None
        )
        self._statuses: dict[str, StatusTarget | None] = {}  # label -> target, memoised (labels repeat)
        self._stages: dict[str, str | None] = {}
        self._users: dict[str, str] = {}

    def facts(self, row: int, values: list[str]) -> list[Fact]:
        raise NotImplementedError

    # --- reading values -------------------------------------------------------------------------

    def check_width(self, values: list[str]) -> None:
        if len(values) != self.width:
            raise RowProblem(
                "row",
                f"{len(values)} values where the header has {self.width} (a stray quote or a cut-off line?)",
            )

    def getter(self, name: str) -> Callable[[list[str]], str]:
        """A function reading the field from a row: stripped (several columns joined with a space), else its
        default, else ''. Built once per field, since it runs for every row of the file.
        """
        where = self.positions.get(name)
        default = self.mapping.defaults.get(name, "")
        if where is None:
            return lambda values: default
        if len(where) == 1:
            index = where[0]
            if default:
                return lambda values: values[index].strip() or default
            return lambda values: values[index].strip()
        return lambda values: " ".join(part for part in (values[i].strip() for i in where) if part) or default

    def cells(self, names: tuple[str, ...]) -> Callable[[list[str]], tuple[str, ...]]:
        """A function reading several fields at once (stripped; '' when unmapped): one C call per row instead
        of one Python call per field, when each field is a single column without a default."""
        single = all(name not in self.mapping.defaults and len(self.positions.get(name, (0,))) == 1 for name in names)
        if not single:
            getters = [self.getter(name) for name in names]
            return lambda values: tuple(get(values) for get in getters)
        indexes = [self.positions[name][0] if name in self.positions else -1 for name in names]
        pick = itemgetter(*indexes)
        strip = str.strip
        if -1 not in indexes:
            return lambda values: tuple(map(strip, pick(values)))
        # an unmapped field reads an empty cell after the row's last (on a copy: rejects keep the row as read)
        return lambda values: tuple(map(strip, pick([*values, ""])))

    def text(self, values: list[str], name: str) -> str:
        found = self._getters.get(name)
        if found is None:
            found = self._getters[name] = self.getter(name)
        return found(values)

    def limited(self, name: str, value: str) -> str:
        limit = FIELD_LIMITS.get(name)
        if limit is not None and len(value) > limit:
            raise RowProblem(name, f"{len(value)} characters where at most {limit} fit ({value[:40]!r}...)")
        return value

    def deleted(self, values: list[str]) -> bool:
        return self.is_deleted is not None and self.is_deleted(values)

    def time(self, name: str, text: str, *, column: str | None = None) -> int:
        """A time field: unreadable, empty or in the future is a reject naming the field."""
        label = column or name
        if not text:
            raise RowProblem(label, f"empty ({self._source(name, column)} has no time)")
        try:
            micros = self.parse_time(text)
        except ValueError as exc:
            raise RowProblem(label, str(exc)) from None
        except OverflowError:
            raise RowProblem(label, f"{text!r} is out of range") from None
        if micros > self.now_us + FUTURE_TOLERANCE_US:
            raise RowProblem(label, f"{text!r} is in the future")
        return micros

    def _source(self, name: str, column: str | None) -> str:
        if column is not None:
            return f"column {column}"
        return f"column {self.columns.source(name)}" if name in self.positions else "the row"

    def status(self, label: str, *, what: str = "status", field: str = "status") -> StatusTarget:
        """A source status label as the model reads it; an unmapped label is a reject."""
        if label in self._statuses:
            found = self._statuses[label]
        else:
            found = self._statuses[label] = resolve_status(label, self.mapping.statuses, self.model)
        if found is None:
            raise RowProblem(
                field, f"{what} {label!r} is not mapped to a status (add it under statuses: in the mapping file)"
            )
        return found

    def stage(self, label: str) -> str:
        if label in self._stages:
            found = self._stages[label]
        else:
            found = self._stages[label] = resolve_stage(label, self.mapping.stages, self.model)
        if found is None:
            raise RowProblem(
                "stage", f"stage {label!r} is not mapped to a stage (add it under stages: in the mapping file)"
            )
        return found

    def user(self, name: str, field: str = "owner") -> str | None:
        """A person named in the file, as a LeadLedger user name when `users:` maps it, else as given."""
        if not name:
            return None
        found = self._users.get(name)
        if found is None:
            found = self.mapping.users.get(fold(name), name)
            self._users[name] = self.limited(field, found)
        return found

    def reason(self, label: str) -> tuple[str | None, str | None]:
        """(reason code, note): a label that is no reason of the model is kept as a note, not lost."""
        if not label:
            return None, None
        code = resolve_reason(label, self.mapping.reasons, self.model)
        return (code, None) if code is not None else (None, f"reason in the file: {label}")

    def custom_fields(self, values: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in self.custom:
            value = self.text(values, name)
            if value:
                data[name] = value
        for name, value in self.custom_defaults:
            data[name] = value
        return data

    def lead_id(self, values: list[str], name: str) -> str:
        lead = self.text(values, name)
        if not lead:
            where = f"column {self.columns.source(name)} is empty" if name in self.positions else "no lead column"
            raise RowProblem(name, f"the row names no lead ({where})")
        return self.limited(name, lead)

    def content_key(self, prefix: str, lead: str, values: list[str]) -> str:
        """A key from what the row says (its mapped cells as written), so the same row is recognised again."""
        digest = hashlib.blake2b(lead.encode(), digest_size=12)
        for where in self.positions.values():
            for i in where:
                digest.update(b"\x1f" + values[i].strip().encode())
        return f"{prefix}:{digest.hexdigest()}"


class LeadRows(RowReader):
    """A leads file (generic, Salesforce Lead.csv, HubSpot contacts): one lead per row, with its current
    status, stage and owner, and the dates it entered each stage when the export has them.
    """

    def facts(self, row: int, values: list[str]) -> list[Fact]:
        self.check_width(values)
        if self.deleted(values):
            raise RowProblem("deleted", "deleted in the source system", ignore=True)
        lead = self._lead(values)
        if "created_at" in self.positions or "created_at" in self.mapping.defaults:
            created = self.time("created_at", self.text(values, "created_at"))
        else:
            created = self.now_us  # a plain list of leads: they are known from now on
        label = self.text(values, "status")
        target = self.status(label) if label else None
        stage_label = self.text(values, "stage")
        current_stage = self.stage(stage_label) if stage_label else (target.stage if target else None)
        owner = self.user(self.text(values, "owner"))
        actor = self.user(self.text(values, "actor"), "actor")
        reason, note = self.reason(self.text(values, "reason"))
        if target is not None and target.reason and reason is None:
            reason = target.reason
        fields: dict[str, Any] = {}
        for name in CONTACT_COLUMNS:
            value = self.text(values, name)
            if value:
                fields[name] = self.limited(name, value)
        fields.update(self.custom_fields(values))

        dated = []
        for stage, index in self.columns.stage_dates.items():
            text = values[index].strip()
            if text:
                at = self.time("stage_dates", text, column=self.columns.header[index])
                dated.append((at, self.model.stage_by_key[stage].rank, stage))
        dated.sort()
        status = target.status if target else None
        if not dated:
            if status is None:
                status = self.status_for_stage(current_stage)
            lead_fact = Fact(lead, created, row, LEAD, status, current_stage, owner, None, None, actor, reason, note,
                             None, fields)  # fmt: skip
            return [lead_fact]
        return self._walk(lead, created, row, status, current_stage, owner, actor, reason, note, fields, dated)

    def _lead(self, values: list[str]) -> str:
        if "id" in self.positions or "id" in self.mapping.defaults:
            return self.lead_id(values, "id")
        email = self.text(values, "email")
        if not email:
            raise RowProblem(
                "email", f"no email to derive the lead id from (column {self.columns.source('email')} is empty)"
            )
        # a list without ids: the same email is the same lead, on every run
        return "M" + hashlib.blake2b(email.casefold().encode(), digest_size=8).hexdigest()

    def _walk(
        self,
        lead: str,
        created: int,
        row: int,
        status: str | None,
        current_stage: str | None,
        owner: str | None,
        actor: str | None,
        reason: str | None,
        note: str | None,
        fields: dict[str, Any],
        dated: list[tuple[int, int, str]],
    ) -> list[Fact]:
        """The stage history from "date entered" columns, with the current status placed where it can begin.

        The export holds only the current status. A status the model ties to a stage (Converted to
        Opportunity, Qualified to SQL) begins when the lead entered that stage; before it the lead had the
        model's initial status. Any other status is taken as the status since creation.
        """
        rank = self.model.stage_rank
        reached = [stage for at, _, stage in dated if at <= created]
        stage_at_creation = reached[-1] if reached else None
        later = [(at, stage) for at, _, stage in dated if at > created]
        if status is None:
            return self._walk_unknown_status(lead, created, row, stage_at_creation, later, current_stage, owner,
                                             actor, note, fields)  # fmt: skip
        tied = self.model.status_sets_stage.get(status)
        begins_at: int | None = None  # index in `later` where the current status begins
        if tied is not None and (stage_at_creation is None or rank(stage_at_creation) < rank(tied)):
            begins_at = next((i for i, (_, stage) in enumerate(later) if rank(stage) >= rank(tied)), None)
        first_status = None if begins_at is not None else status
        facts = [
            Fact(lead, created, row, LEAD, first_status, stage_at_creation, owner, None, None, actor,
                 reason if first_status else None, note, None, fields)
        ]  # fmt: skip
        for i, (at, stage) in enumerate(later):
            starts = i == begins_at
            facts.append(
                Fact(lead, at, row, CHANGE, status if starts else None, stage, None, None, None, actor,
                     reason if starts else None, None, f"stage:{lead}:{stage}:{at}")
            )  # fmt: skip
        self._stage_now(facts, lead, created, row, later, stage_at_creation, current_stage, actor)
        return facts

    def _walk_unknown_status(
        self,
        lead: str,
        created: int,
        row: int,
        stage_at_creation: str | None,
        later: list[tuple[int, str]],
        current_stage: str | None,
        owner: str | None,
        actor: str | None,
        note: str | None,
        fields: dict[str, Any],
    ) -> list[Fact]:
        """No status in the export (HubSpot leaves Lead Status blank for most customers): each stage entered
        sets the status the model says entering it sets (SQL -> Working, Opportunity -> Converted), as a live
        stage change would.
        """
        status = self.status_for_stage(stage_at_creation)
        facts = [Fact(lead, created, row, LEAD, status, stage_at_creation, owner, None, None, actor, None, note,
                      None, fields)]  # fmt: skip
        for at, stage in later:
            derived = self.status_for_stage(stage)
            sets = derived if derived is not None and derived != status else None
            status = derived or status
            facts.append(Fact(lead, at, row, CHANGE, sets, stage, None, None, None, actor, None, None,
                              f"stage:{lead}:{stage}:{at}"))  # fmt: skip
        self._stage_now(
            facts, lead, created, row, later, stage_at_creation, current_stage, actor, derive=True, status_so_far=status
        )
        return facts

    def status_for_stage(self, stage: str | None) -> str | None:
        """The status a lead with no known status has in `stage`: what the latest stage up to it sets."""
        if stage is None:
            return None
        for candidate in reversed(self.model.stages[: self.model.stage_rank(stage) + 1]):
            if candidate.sets_status is not None:
                return candidate.sets_status
        return None

    def _stage_now(
        self,
        facts: list[Fact],
        lead: str,
        created: int,
        row: int,
        later: list[tuple[int, str]],
        stage_at_creation: str | None,
        current_stage: str | None,
        actor: str | None,
        *,
        derive: bool = False,
        status_so_far: str | None = None,
    ) -> None:
        """The lifecycle set back (or forward) by hand since the dates: record where it stands in the export."""
        walked = later[-1][1] if later else stage_at_creation
        if current_stage is None or walked == current_stage:
            return
        at = max(created, later[-1][0] if later else created)
        # with no status in the export (derive), the stage the lead stands in says it
        derived = self.status_for_stage(current_stage) if derive else None
        facts.append(Fact(lead, at, row, CHANGE, derived if derived != status_so_far else None, current_stage,
                          None, None, None, actor, None, "current lifecycle stage in the export",
                          f"stage-now:{lead}:{current_stage}:{at}"))  # fmt: skip


class HistoryRows(RowReader):
    """A generic history file: one change per row (lead, when, and the status, stage and/or owner after it)."""

    def facts(self, row: int, values: list[str]) -> list[Fact]:
        self.check_width(values)
        if self.deleted(values):
            raise RowProblem("deleted", "deleted in the source system", ignore=True)
        lead = self.lead_id(values, "lead")
        at = self.time("at", self.text(values, "at"))
        label = self.text(values, "status")
        target = self.status(label) if label else None
        stage_label = self.text(values, "stage")
        stage = self.stage(stage_label) if stage_label else (target.stage if target else None)
        owner = self.user(self.text(values, "owner"))
        if target is None and stage is None and owner is None:
            raise RowProblem("status", "the row changes nothing: no status, stage or owner")
        actor = self.user(self.text(values, "actor"), "actor")
        reason, reason_note = self.reason(self.text(values, "reason"))
        if target is not None and target.reason and reason is None:
            reason = target.reason
        note = self.text(values, "note") or None
        if reason_note:
            note = f"{note}; {reason_note}" if note else reason_note
        given_key = self.text(values, "key")
        if given_key:
            key = f"k:{lead}:{given_key}"
            if len(key) > 200:
                key = self.content_key("k", lead, values)
        else:
            key = self.content_key("h", lead, values)
        data = self.custom_fields(values) or None
        return [Fact(lead, at, row, CHANGE, target.status if target else None, stage, owner, None, None, actor,
                     reason, note, key, data)]  # fmt: skip


class SalesforceHistoryRows(RowReader):
    """Salesforce LeadHistory (Data Loader): Field `created`, `Status`, `Owner` or `leadConverted` per row,
    with OldValue and NewValue. Rows about other fields (Rating, Email...) are not status history.
    """

    FIELDS = ("deleted", "field", "lead", "at", "key", "actor", "data_type", "new_value", "old_value")

    def __init__(self, mapping: Mapping, columns: Columns, *, now_us: int):
        super().__init__(mapping, columns, now_us=now_us)
        self._cells = self.cells(self.FIELDS)

    def facts(self, row: int, values: list[str]) -> list[Fact]:
        if len(values) != self.width:
            self.check_width(values)
        deleted, field, lead, at_text, history_id, actor_name, data_type, new_value, old_value = self._cells(values)
        if deleted and deleted.casefold() in TRUE_VALUES:
            raise RowProblem("deleted", "deleted in Salesforce (IsDeleted)", ignore=True)
        kind = _SALESFORCE_FIELDS.get(field)
        if kind is None:
            kind = field.casefold()
            if kind not in _SALESFORCE_KINDS:
                raise RowProblem("field", f"Salesforce field {field or '(empty)'} is not status history", ignore=True)
        if not lead or len(lead) > 64:
            lead = self.lead_id(values, "lead")
        at = self.time("at", at_text)
        key = f"sf:{history_id}" if history_id else self.content_key("sf", lead, values)
        actor = self.user(actor_name, "actor")
        if kind == "created":
            return [Fact(lead, at, row, CREATED, actor=actor, key=key)]
        if kind == "status":
            if not new_value:
                raise RowProblem("status", "NewValue is empty: the change has no status to record")
            target = self.status(new_value, what="NewValue")
            old = self.status(old_value, what="OldValue").status if old_value else None
            return [Fact(lead, at, row, CHANGE, target.status, target.stage, None, old, None, actor, target.reason,
                         None, key)]  # fmt: skip
        if kind == "owner":
            if not new_value:
                raise RowProblem("owner", "NewValue is empty: the change has no owner to record")
            by_id = data_type.casefold() == "entityid" or bool(SALESFORCE_ID.match(new_value))
            return [Fact(lead, at, row, CHANGE, None, None, self.user(new_value), None, self.user(old_value), actor,
                         None, None, key, None, OWNER_BY_ID if by_id else 0)]  # fmt: skip
        target = self.status("leadConverted", what="Field leadConverted", field="field")
        return [Fact(lead, at, row, CHANGE, target.status, target.stage, None, None, None, actor, target.reason,
                     None, key)]  # fmt: skip


_SALESFORCE_KINDS = ("created", "status", "owner", "leadconverted")
_SALESFORCE_FIELDS = {"created": "created", "Status": "status", "Owner": "owner", "leadConverted": "leadconverted"}


def row_reader(mapping: Mapping, columns: Columns, *, now_us: int) -> RowReader:
    if mapping.kind == "leads":
        return LeadRows(mapping, columns, now_us=now_us)
    if mapping.preset.name == "salesforce":
        return SalesforceHistoryRows(mapping, columns, now_us=now_us)
    return HistoryRows(mapping, columns, now_us=now_us)
