"""The mapping file: which source column feeds which lead field, and how the source's labels read in the model.

A mapping is a preset's defaults with the user's file laid over them, checked against the active status
model before a single row is read. Every problem names the mapping file, the line and the key, the way
model files report theirs; values are read as text (YAML's BaseLoader), so a status label such as `No` or
`1` stays the label it is in the CRM.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from leadledger.domain.statusmodel import StatusModel
from leadledger.model.source import IssueLog, ModelError, ModelIssue, dotted, line_for, read_yaml_with_lines
from leadledger.services.errors import Invalid

PRESETS = ("generic", "salesforce", "hubspot")
KINDS = ("leads", "history")

# Lead fields with a meaning of their own; any other name in `columns:` is a custom field kept on the lead.
LEAD_FIELDS = (
    "id", "name", "email", "phone", "company", "source", "campaign", "owner", "created_at", "status", "stage",
    "reason", "actor", "deleted",
)  # fmt: skip
HISTORY_FIELDS = ("lead", "at", "status", "stage", "owner", "actor", "reason", "note", "key", "deleted")
# What the ledger's columns hold at most: a longer value cannot be recorded, so its row is rejected.
FIELD_LIMITS = {"name": 300, "email": 320, "phone": 40, "company": 300, "source": 100, "campaign": 200,
                "owner": 100, "actor": 100, "id": 64, "lead": 64}  # fmt: skip
CUSTOM_FIELD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
EPOCH_FORMATS = ("epoch_s", "epoch_ms")

Kind = Literal["leads", "history"]


class MappingError(Invalid):
    """The mapping (or the file's header against it) is not usable; `issues` lists every problem found."""

    def __init__(self, issues: list[ModelIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class StatusTarget(BaseModel):
    """What a source status label means in the model: a status, and optionally the stage and reason with it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str
    stage: str | None = None
    reason: str | None = None


ColumnRef = str | list[str]


class MappingFile(BaseModel):
    """The mapping file as written; see the README's "Importing from another CRM" for each section."""

    model_config = ConfigDict(extra="forbid")

    preset: Literal["generic", "salesforce", "hubspot"] | None = None
    columns: dict[str, ColumnRef] = {}
    defaults: dict[str, str] = {}
    statuses: dict[str, str | StatusTarget] = {}
    stages: dict[str, str] = {}
    reasons: dict[str, str] = {}
    users: dict[str, str] = {}
    stage_dates: dict[str, str] = {}
    time_formats: list[str] = []
    timezone: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    create_leads: bool | None = None

    @field_validator("columns", "defaults", "stages", "reasons", "users", "stage_dates", "statuses", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value in (None, "") else value  # a section written with nothing under it

    @field_validator("time_formats", mode="before")
    @classmethod
    def _one_format(cls, value: Any) -> Any:
        if value in (None, ""):
            return []
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class Preset:
    """A source system's defaults: column names to look for, its standard labels, what a row means."""

    name: str
    kinds: tuple[str, ...]
    # field -> alternatives, tried in order; an alternative is one column or columns joined with a space
    columns: dict[str, dict[str, tuple[tuple[str, ...], ...]]]
    statuses: dict[str, StatusTarget] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    required: dict[str, tuple[str, ...]] = field(default_factory=dict)  # kind -> fields the file must have
    stage_date_headers: tuple[re.Pattern[str], ...] = ()  # headers naming when a lead entered a stage
    hint: str = ""


@dataclass
class Mapping:
    """A preset and a mapping file compiled against the model: ready to bind to a file's header."""

    kind: str
    preset: Preset
    model: StatusModel
    file: str  # the mapping file's name, for messages ("<preset salesforce>" when there is none)
    text: str | None
    columns: dict[str, tuple[tuple[str, ...], ...]]  # field -> alternatives
    user_columns: frozenset[str]  # fields the user named: a missing column is an error, not a fallback
    defaults: dict[str, str]
    statuses: dict[str, StatusTarget]  # folded label -> target
    stages: dict[str, str]  # folded label -> stage key
    reasons: dict[str, str]  # folded label -> reason code
    users: dict[str, str]  # folded name -> user name
    stage_dates: dict[str, str]  # stage key -> column
    time_formats: tuple[str, ...]
    timezone: ZoneInfo | None
    encoding: str
    delimiter: str
    create_leads: bool
    lines: dict[tuple[str | int, ...], int]

    def line(self, *path: str | int) -> int | None:
        return line_for(self.lines, path) if self.lines else None

    def issue(self, message: str, *path: str | int) -> ModelIssue:
        return ModelIssue(self.file, self.line(*path), dotted(path), message)


def fold(label: str) -> str:
    """How labels compare: case and surrounding or repeated spaces do not matter ("Open  - not contacted")."""
    return " ".join(label.split()).casefold()


def read_mapping_text(text: str, file: str) -> tuple[MappingFile, dict[tuple[str | int, ...], int]]:
    """Parse and validate a mapping file; raises MappingError naming the line of every problem."""
    try:  # BaseLoader builds only str, list and dict: safe
        data, lines = read_yaml_with_lines(text, file, yaml.BaseLoader, empty="the mapping file is empty")
    except ModelError as exc:
        raise MappingError(exc.issues) from exc
    if not isinstance(data, dict):
        raise MappingError([ModelIssue(file, 1, "", "a mapping file is a set of sections (columns, statuses, ...)")])
    try:
        return MappingFile.model_validate(data), lines
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = _useful_loc(tuple(err["loc"]))
            issues.append(ModelIssue(file, line_for(lines, loc), dotted(loc), _message(err)))
        raise MappingError(issues) from exc


def _useful_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic names union branches in the location (`str`, `StatusTarget`, `list[str]`); the user wrote neither."""
    return tuple(part for part in loc if not (isinstance(part, str) and (part[:1].isupper() or "[" in part)))


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "literal_error":
        return f"must be one of: {', '.join(PRESETS)}"
    return str(err["msg"])


def load_mapping(
    model: StatusModel,
    *,
    kind: str,
    preset_name: str | None,
    text: str | None = None,
    file: str | None = None,
) -> Mapping:
    """The preset's defaults with the mapping file (if any) laid over them, every name checked against the model."""
    from leadledger.importers.presets import preset_named

    parsed, lines = read_mapping_text(text, file or "<mapping>") if text is not None else (MappingFile(), {})
    where = file or ("<mapping>" if text is not None else f"<preset {preset_name or parsed.preset or 'generic'}>")
    if preset_name and parsed.preset and preset_name != parsed.preset:
        raise MappingError([ModelIssue(where, line_for(lines, ("preset",)), "preset",
                                       f"the file is written for preset {parsed.preset!r}, not {preset_name!r}")])  # fmt: skip
    preset = preset_named(preset_name or parsed.preset or "generic")
    if kind not in preset.kinds:
        raise MappingError(
            [ModelIssue(where, None, "", f"the {preset.name} preset does not read {kind} files: {preset.hint}")]
        )
    if preset.name == "generic" and text is None:
        raise MappingError(
            [ModelIssue(where, None, "", "the generic preset needs a mapping file (--map) naming the columns")]
        )
    return _Compiler(model, kind, preset, parsed, lines, where, text).compile()


class _Compiler:
    """Lays the user's mapping over the preset and collects every name the model does not know."""

    def __init__(
        self,
        model: StatusModel,
        kind: str,
        preset: Preset,
        parsed: MappingFile,
        lines: dict[tuple[str | int, ...], int],
        file: str,
        text: str | None,
    ):
        self.model, self.kind, self.preset, self.parsed = model, kind, preset, parsed
        self.lines, self.file, self.text = lines, file, text
        self.log = IssueLog(file, lines)

    def error(self, message: str, *path: str | int) -> None:
        self.log.error(path, message)

    def compile(self) -> Mapping:
        parsed = self.parsed
        known = LEAD_FIELDS if self.kind == "leads" else HISTORY_FIELDS
        columns = dict(self.preset.columns.get(self.kind, {}))
        for name, ref in parsed.columns.items():
            if name not in known and not CUSTOM_FIELD.match(name):
                self.error(f"not a {self.kind} field ({', '.join(known)}) nor a custom field name (lower_case)",
                           "columns", name)  # fmt: skip
                continue
            names = (ref,) if isinstance(ref, str) else tuple(ref)
            if not names or any(not n.strip() for n in names):
                self.error("name the source column (or a list of columns to join)", "columns", name)
                continue
            columns[name] = (tuple(n.strip() for n in names),)
        for name in parsed.defaults:
            if name not in known and not CUSTOM_FIELD.match(name):
                self.error(f"not a {self.kind} field ({', '.join(known)}) nor a custom field name", "defaults", name)

        statuses = {fold(k): v for k, v in self.preset.statuses.items()}
        for label, target in parsed.statuses.items():
            resolved = StatusTarget(status=target) if isinstance(target, str) else target
            if self._check_target(resolved, ("statuses", label)):
                statuses[fold(label)] = resolved
        stages = {fold(k): v for k, v in self.preset.stages.items()}
        for label, stage in parsed.stages.items():
            if self._check_stage(stage, ("stages", label)):
                stages[fold(label)] = stage
        reasons: dict[str, str] = {}
        for label, code in parsed.reasons.items():
            if code not in self.model.reasons:
                self.error(f"{code!r} is not a reason of the model (one of: {', '.join(self.model.reasons)})",
                           "reasons", label)  # fmt: skip
            reasons[fold(label)] = code
        users = {fold(name): user.strip() for name, user in parsed.users.items()}
        for name, user in parsed.users.items():
            if not user.strip() or len(user.strip()) > FIELD_LIMITS["owner"]:
                self.error(f"a user name of 1-{FIELD_LIMITS['owner']} characters", "users", name)

        stage_dates: dict[str, str] = {}
        for stage, column in parsed.stage_dates.items():
            if self.kind != "leads":
                self.error("stage dates are read from leads files", "stage_dates")
                break
            if self._check_stage(stage, ("stage_dates", stage)):
                stage_dates[stage] = column.strip()

        defaults = {k: v.strip() for k, v in parsed.defaults.items() if v.strip()}
        for name in ("status", "stage", "reason"):
            if name in defaults:
                self._check_default(name, defaults[name], statuses, stages, reasons)

        formats = tuple(parsed.time_formats)
        for i, fmt in enumerate(formats):
            if fmt not in EPOCH_FORMATS and "%" not in fmt:
                self.error(f"a strptime format such as %d/%m/%Y %H:%M, or one of {', '.join(EPOCH_FORMATS)}",
                           "time_formats", i)  # fmt: skip
        zone = None
        if parsed.timezone:
            try:
                zone = ZoneInfo(parsed.timezone.strip())
            except (ZoneInfoNotFoundError, ValueError):
                self.error(f"unknown time zone {parsed.timezone!r} (an IANA name such as Europe/Berlin)", "timezone")
        encoding = (parsed.encoding or "utf-8-sig").strip()
        try:
            if codecs.lookup(encoding).name == "utf-8":
                encoding = "utf-8-sig"  # a byte-order mark is not part of the first column's name
        except LookupError:
            self.error(f"unknown encoding {encoding!r} (utf-8, cp1252, latin-1...)", "encoding")
        delimiter = parsed.delimiter if parsed.delimiter is not None else ","
        if len(delimiter) != 1:
            self.error("one character, such as ',' or ';' (write a tab as \"\\t\")", "delimiter")
        if self.log.issues:
            raise MappingError(self.log.issues)
        return Mapping(
            kind=self.kind,
            preset=self.preset,
            model=self.model,
            file=self.file,
            text=self.text,
            columns=columns,
            user_columns=frozenset(parsed.columns),
            defaults=defaults,
            statuses=statuses,
            stages=stages,
            reasons=reasons,
            users=users,
            stage_dates=stage_dates,
            time_formats=formats,
            timezone=zone,
            encoding=encoding,
            delimiter=delimiter,
            create_leads=True if parsed.create_leads is None else parsed.create_leads,
            lines=self.lines,
        )

    def _check_target(self, target: StatusTarget, path: tuple[str, ...]) -> bool:
        ok = True
        if target.status not in self.model.statuses:
            self.error(f"{target.status!r} is not a status of the model (one of: {', '.join(self.model.statuses)})",
                       *path)  # fmt: skip
            ok = False
        if target.stage is not None and not self._check_stage(target.stage, path):
            ok = False
        if target.reason is not None and target.reason not in self.model.reasons:
            self.error(f"{target.reason!r} is not a reason of the model", *path)
            ok = False
        return ok

    def _check_stage(self, stage: str, path: tuple[str, ...]) -> bool:
        if stage not in self.model.stage_by_key:
            keys = ", ".join(s.key for s in self.model.stages)
            self.error(f"{stage!r} is not a stage of the model (one of: {keys})", *path)
            return False
        return True

    def _check_default(
        self,
        name: str,
        value: str,
        statuses: MappingABC[str, StatusTarget],
        stages: dict[str, str],
        reasons: dict[str, str],
    ) -> None:
        if name == "status" and resolve_status(value, statuses, self.model) is None:
            self.error(f"{value!r} is neither a status of the model nor a label under statuses:", "defaults", name)
        if name == "stage" and resolve_stage(value, stages, self.model) is None:
            self.error(f"{value!r} is neither a stage of the model nor a label under stages:", "defaults", name)
        if name == "reason" and resolve_reason(value, reasons, self.model) is None:
            self.error(f"{value!r} is not a reason of the model", "defaults", name)


def resolve_status(label: str, statuses: MappingABC[str, StatusTarget], model: StatusModel) -> StatusTarget | None:
    """A source label as the model reads it: the mapping first, then a status key or label of the model itself."""
    folded = fold(label)
    found = statuses.get(folded)
    if found is not None:
        return found
    for status in model.statuses.values():
        if folded in (status.key, fold(status.label)):
            return StatusTarget(status=status.key)
    return None


def resolve_stage(label: str, stages: dict[str, str], model: StatusModel) -> str | None:
    folded = fold(label)
    found = stages.get(folded)
    if found is not None:
        return found
    for stage in model.stages:
        if folded in (stage.key, fold(stage.label)):
            return stage.key
    return None


def resolve_reason(label: str, reasons: dict[str, str], model: StatusModel) -> str | None:
    folded = fold(label)
    found = reasons.get(folded)
    if found is not None:
        return found
    for code, reason in model.reasons.items():
        if folded in (code, fold(reason.label)):
            return code
    return None


def mapping_text(path: Path) -> str:
    """Read a mapping file; a missing or unreadable file is a MappingError naming it."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise MappingError([ModelIssue(str(path), None, "", f"cannot read the mapping file ({exc.strerror})")]) from exc
    except UnicodeDecodeError as exc:
        raise MappingError([ModelIssue(str(path), None, "", "the mapping file is not UTF-8 text")]) from exc
