"""Every CSV LeadLedger writes is safe to open in a spreadsheet, its header row included."""

from __future__ import annotations

import csv
import io

from leadledger.services.csvcells import csv_text, unguarded


def test_a_whole_document_guards_header_and_cells_and_writes_nothing_for_none() -> None:
    text = csv_text(["=by", "leads"], [["@SUM(A1)", 3], [None, "-2+3"], ["plain", 0]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["'=by", "leads"], ["'@SUM(A1)", "3"], ["", "'-2+3"], ["plain", "0"]]
    assert [unguarded(cell) for cell in rows[0]] == ["=by", "leads"]  # an importer reads the name back
