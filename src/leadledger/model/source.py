"""A model file as text: YAML read with the line of every key path, and issues that name file, line and key.

Shared by the model file and the import mapping files, so both point an ops person at the line to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

Path_ = tuple[str | int, ...]
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ten times faster


class ModelYamlLoader(_Base):
    """YAML 1.2 booleans: only true/false. Under YAML 1.1 a rule's `on:` key would read as True."""


ModelYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ModelYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class ModelIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ModelError(Exception):
    """The model file is not valid; `issues` lists every problem found."""

    def __init__(self, issues: list[ModelIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def read_yaml(text: str) -> Any:
    """Parse YAML the way model files are read (YAML 1.2 booleans, so `on:` stays a key)."""
    return yaml.load(text, Loader=ModelYamlLoader)


def read_yaml_with_lines(text: str, file: str, loader: Any, *, empty: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text and index the line of every key path, so later errors can name file, line and key.

    Raises ModelError for text that is not YAML, is empty (`empty` says so) or repeats a key. Shared by
    the model file and the import mapping files.
    """
    lines: dict[Path_, int] = {}
    try:
        node = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ModelError([ModelIssue(file, line, "", f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from exc
    if node is None:
        raise ModelError([ModelIssue(file, 1, "", empty)])
    duplicates: list[ModelIssue] = []
    index_lines(node, (), lines, duplicates, file)
    if duplicates:
        raise ModelError(duplicates)
    return yaml.load(text, Loader=loader), lines


def index_lines(node: yaml.Node, path: Path_, lines: dict[Path_, int], dups: list[ModelIssue], file: str) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                dups.append(ModelIssue(file, key_node.start_mark.line + 1, dotted((*path, key)), "key appears twice"))
            seen.add(key)
            index_lines(value_node, (*path, key), lines, dups, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            index_lines(item, (*path, index), lines, dups, file)


def line_for(lines: dict[Path_, int], loc: tuple[Any, ...]) -> int | None:
    path = tuple(loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


class IssueLog:
    """The problems found while compiling a file, each placed at the line of its key path."""

    def __init__(self, file: str, lines: dict[Path_, int]):
        self.file = file
        self.lines = lines
        self.issues: list[ModelIssue] = []

    def error(self, path: Path_, message: str) -> None:
        self.issues.append(ModelIssue(self.file, line_for(self.lines, path), dotted(path), message))
