"""The reject file: every row that could not be recorded, with its row number, the field and the reason.

It has the source's own columns after the three `reject_*` ones, so a user can fix the rows in a
spreadsheet and import the file again with the same mapping (the extra columns are not read).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import IO

from leadledger.services.csvcells import safe_cell

REJECT_COLUMNS = ("reject_row", "reject_field", "reject_reason")


class RejectFile:
    """Opened on the first reject, so a clean import leaves no empty file behind."""

    def __init__(self, path: Path, header: list[str]):
        self.path = path
        self.header = header
        self.count = 0
        self.reasons: Counter[tuple[str, str]] = Counter()
        self._file: IO[str] | None = None
        self._writer: csv._writer | None = None  # type: ignore[name-defined]

    def add(self, row: int, values: list[str], field: str, reason: str) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # utf-8 with a byte-order mark: Excel then shows accents right; the importer reads either
            self._file = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by close()
            self._writer = csv.writer(self._file)
            self._writer.writerow([*REJECT_COLUMNS, *(safe_cell(h) for h in self.header)])
        self._writer.writerow([row, safe_cell(field), safe_cell(reason), *(safe_cell(v) for v in values)])
        self.count += 1
        self.reasons[(field, reason)] += 1

    @property
    def written(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
