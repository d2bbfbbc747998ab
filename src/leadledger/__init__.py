"""LeadLedger: lead status management with a status model as code and an append-only ledger."""

__version__ = "0.1.0"
