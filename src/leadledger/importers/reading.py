"""Streaming a CSV export: one record at a time, whatever the file's size, with the quirks real exports have.

The standard `csv` module handles quoted commas, quoted newlines and CRLF (the file is opened with
`newline=""` as it asks); the `utf-8-sig` codec drops a byte-order mark. Rows are numbered as a
spreadsheet shows them: the header is row 1, and a record spanning several lines is one row.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from leadledger.importers.mapping import Mapping, MappingError, resolve_stage
from leadledger.model.source import ModelIssue
from leadledger.services.csvcells import GUARD, unguarded

# A CRM's long-text fields (descriptions, notes) can exceed csv's default 128 KiB cell limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FileUnreadable(MappingError):
    """The file itself cannot be read: missing, not text in its encoding, or without a header."""


@dataclass(frozen=True)
class Columns:
    """A mapping bound to one file's header: for each field, the positions of the column(s) holding it."""

    header: tuple[str, ...]
    positions: dict[str, tuple[int, ...]]  # field -> column indexes (joined with a space when several)
    stage_dates: dict[str, int]  # stage key -> column index
    ignored: tuple[str, ...]  # notes about columns the import will not read, for the summary

    def has(self, name: str) -> bool:
        return name in self.positions

    def source(self, name: str) -> str:
        """The column name(s) a field is read from, for messages ("column Status is empty")."""
        return " + ".join(self.header[i] for i in self.positions[name])


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def bind(mapping: Mapping, header: list[str], file: str) -> Columns:
    """Find every mapped column in the header; a column the user named that is missing is an error."""
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(_folded(name), i)
    issues: list[ModelIssue] = []
    positions: dict[str, tuple[int, ...]] = {}
    for name, alternatives in mapping.columns.items():
        for alternative in alternatives:
            found = [index.get(_folded(column)) for column in alternative]
            if all(i is not None for i in found):
                positions[name] = tuple(i for i in found if i is not None)
                break
        else:
            if name in mapping.user_columns:
                wanted = " + ".join(alternatives[0])
                issues.append(mapping.issue(f"{file} has no column {wanted!r} (its columns: {_listed(header)})",
                                            "columns", name))  # fmt: skip
    for name in mapping.preset.required.get(mapping.kind, ()):
        if name not in positions and name not in mapping.defaults and name not in mapping.user_columns:
            options = " or ".join(repr(" + ".join(a)) for a in mapping.columns.get(name, ()))
            what = f"column {options}" if options else "column (map it under columns:)"
            issues.append(mapping.issue(f"{file} has no {what} for {name} (its columns: {_listed(header)})",
                                        "columns", name))  # fmt: skip
    if mapping.kind == "leads" and "id" not in positions and "email" not in positions:
        issues.append(mapping.issue("map an id column (or an email column to derive ids from)", "columns"))
    if (
        mapping.kind == "history"
        and mapping.preset.name == "generic"
        and not any(f in positions or f in mapping.defaults for f in ("status", "stage", "owner"))
    ):
        issues.append(mapping.issue("map at least one of status, stage or owner (a column or a default)", "columns"))

    stage_dates: dict[str, int] = {}
    for stage, column in mapping.stage_dates.items():
        position = index.get(_folded(column))
        if position is None:
            issues.append(mapping.issue(f"{file} has no column {column!r} (its columns: {_listed(header)})",
                                        "stage_dates", stage))  # fmt: skip
        else:
            stage_dates[stage] = position
    ignored: list[str] = []
    if mapping.kind == "leads":
        for i, name in enumerate(header):
            for pattern in mapping.preset.stage_date_headers:
                match = pattern.match(name.strip())
                if match is None:
                    continue
                entered = resolve_stage(match.group("stage"), mapping.stages, mapping.model)
                if entered is None:
                    ignored.append(
                        f"column {name!r}: stage {match.group('stage')!r} is not mapped (add it under stages:)"
                    )
                elif entered not in stage_dates:
                    stage_dates[entered] = i
                break
    if issues:
        raise MappingError(issues)
    return Columns(tuple(header), positions, stage_dates, tuple(ignored))


def _listed(header: list[str]) -> str:
    shown = ", ".join(header[:25])
    return shown + (f", ... ({len(header)} in all)" if len(header) > 25 else "")


class CsvFile:
    """A CSV file read once, front to back: the header, then (row number, values) per record."""

    def __init__(self, path: Path, *, encoding: str, delimiter: str):
        self.path = path
        self.name = path.name
        try:
            self.size = path.stat().st_size
            self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise FileUnreadable([ModelIssue(str(path), None, "", f"cannot read the file ({exc.strerror})")]) from exc
        self._text = io.TextIOWrapper(self._raw, encoding=encoding, newline="")
        self._reader = csv.reader(self._text, delimiter=delimiter, strict=False)
        self.row_number = 1
        try:
            first = next(self._reader, None)
        except UnicodeDecodeError as exc:
            self.close()
            raise self._decode_error(exc, encoding) from exc
        except csv.Error as exc:
            self.close()
            raise FileUnreadable([ModelIssue(str(path), 1, "", f"not a CSV file ({exc})")]) from exc
        if not first or not any(cell.strip() for cell in first):
            self.close()
            raise FileUnreadable([ModelIssue(str(path), 1, "", "the file has no header row")])
        self.header = [unguarded(cell.strip()) for cell in first]
        self.encoding = encoding

    @property
    def bytes_read(self) -> int:
        """How far the reader is, in bytes (to the buffer: enough for a progress bar)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return self.size

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Each record with its row number; blank lines are skipped (they hold no data) but keep their number."""
        reader = self._reader
        number = 1
        try:
            for values in reader:
                number += 1
                self.row_number = number
                if not values or (len(values) == 1 and not values[0].strip()):
                    continue
                if any(v[:1] == GUARD for v in values):  # a spreadsheet-safe export (ours, or another CRM's)
                    values = [unguarded(v) for v in values]
                yield number, values
        except UnicodeDecodeError as exc:
            raise self._decode_error(exc, self.encoding) from exc
        except csv.Error as exc:
            raise FileUnreadable(
                [ModelIssue(str(self.path), number + 1, "", f"the CSV cannot be read ({exc})")]
            ) from exc

    def _decode_error(self, exc: UnicodeDecodeError, encoding: str) -> FileUnreadable:
        hint = (
            " (set encoding: cp1252 or latin-1 in the mapping file if it was saved by Excel)"
            if "utf" in encoding
            else ""
        )
        message = f"not {encoding} text near row {self.row_number + 1}{hint}"
        return FileUnreadable([ModelIssue(str(self.path), self.row_number + 1, "", message)])

    def close(self) -> None:
        try:
            self._text.close()
        except Exception:  # the wrapper may fail to close after a decode error; the raw file still must
            self._raw.close()
