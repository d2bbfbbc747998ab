"""CSV cells that are safe to open in a spreadsheet (OWASP's CSV injection rule), for every CSV LeadLedger writes.

A lead's name, a note or a form field is untrusted text: written as `=HYPERLINK(...)` into a CSV, Excel or
LibreOffice would run it as a formula when someone opens the export. A text cell starting with `=`, `+`, `-`,
`@`, a tab or a carriage return is written with a leading apostrophe, which spreadsheets show as text. The
importers drop that apostrophe again, so a reject file fixed in a spreadsheet imports as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
GUARD = "'"


def safe_cell(value: Any) -> Any:
    """`value` as a CSV cell: text that a spreadsheet would read as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return GUARD + value
    return value


def unguarded(value: str) -> str:
    """The text a guarded cell stood for (an apostrophe before a formula character is the guard, not data)."""
    if value.startswith(GUARD) and value[1:2] and value[1] in FORMULA_STARTS:
        return value[1:]
    return value


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV document, the header row guarded like every other (it can carry a name the caller chose)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        writer.writerow(["" if cell is None else safe_cell(cell) for cell in row])
    return out.getvalue()
