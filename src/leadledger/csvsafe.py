"""Cells for CSV files that people open in spreadsheets: text a spreadsheet would run as a formula is neutralised.

A lead's name or company is untrusted text. A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
return is read by Excel, LibreOffice and Google Sheets as a formula (CSV injection); prefixing it with a
single quote makes it inert text, the OWASP recommendation. Only text is touched: numbers and dates are
written as they are.
"""

from __future__ import annotations

from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, or the text with a leading quote when a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
