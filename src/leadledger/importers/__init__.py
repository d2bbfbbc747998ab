"""Importing CRM exports: a generic CSV with a mapping file, Salesforce Lead/LeadHistory, HubSpot contacts.

`import_file` is the service function every adapter calls (the CLI today, the REST API later); it is
UI-free and reports progress through a callback.
"""

from __future__ import annotations

from leadledger.importers.mapping import MappingError
from leadledger.importers.reading import FileUnreadable
from leadledger.importers.service import ImportFailed, ImportSummary, default_rejects_path, import_file, list_runs

__all__ = [
    "FileUnreadable",
    "ImportFailed",
    "ImportSummary",
    "MappingError",
    "default_rejects_path",
    "import_file",
    "list_runs",
]
