"""Running LeadLedger in production: readiness, metrics, backups, exports, ledger verification, partitions.

Operations code sits beside the service layer: it reads the store directly (counts, copies, checks) and
never changes a lead; the CLI (`cli/ops.py`) and the API's probes are its adapters.
"""
