"""Read a status model file: YAML -> validated schema -> compiled `StatusModel`.

Every error names the file, the line and the key path, so an ops person can fix the file without guessing.
The steps live in their own modules: `source` (YAML with line numbers, issues), `schema` (validation),
`compile_core` (stages, statuses, transitions, calendars) and `compile_automation` (rules, SLAs, segments).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from leadledger.domain.statusmodel import (
    StatusModel,
)
from leadledger.model.compile_core import CoreCompiler
from leadledger.model.schema import ModelFile
from leadledger.model.source import (
    IssueLog,
    ModelError,
    ModelIssue,
    ModelYamlLoader,
    Path_,
    dotted,
    line_for,
    read_yaml_with_lines,
)


@dataclass(frozen=True)
class LoadedModel:
    model: StatusModel
    source: ModelFile
    text: str
    file: str
    lines: dict[Path_, int]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    def line_of(self, *path: str | int) -> int | None:
        return line_for(self.lines, path)


def default_model_text() -> str:
    return resources.files("leadledger.model").joinpath("default_model.yaml").read_text(encoding="utf-8")


def load_default() -> LoadedModel:
    return load_text(default_model_text(), "default_model.yaml")


def load_file(path: str | Path) -> LoadedModel:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError([ModelIssue(file, None, "", f"cannot read the file ({exc.strerror})")]) from exc
    except UnicodeDecodeError as exc:
        raise ModelError([ModelIssue(file, None, "", "the file is not UTF-8 text")]) from exc
    return load_text(text, file)


def load_text(text: str, file: str = "<model>", *, check_holidays: bool = True) -> LoadedModel:
    """Parse, validate and compile a model; raises ModelError listing every problem with its line.

    `check_holidays=False` defers loading holiday tables to first use (for a model validated when stored).
    """
    data, lines = read_yaml_with_lines(text, file, ModelYamlLoader, empty="the file is empty")
    if not isinstance(data, dict):
        raise ModelError(
            [ModelIssue(file, 1, "", "the model must be a mapping of sections (name, stages, statuses...)")]
        )
    try:
        source = ModelFile.model_validate(data)
    except ValidationError as exc:
        issues = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            issues.append(ModelIssue(file, line_for(lines, loc), dotted(loc), err["msg"]))
        raise ModelError(issues) from exc
    log = IssueLog(file, lines)
    model = CoreCompiler(source, log, check_holidays).compile()
    if log.issues:
        raise ModelError(log.issues)
    return LoadedModel(model=model, source=source, text=text, file=file, lines=lines)
