"""Marketing on top of the ledger: segments and suppression lists (and, in `quality`, the data behind them).

Segments are defined in the status model (`segments:`) and evaluated from the ledger through the analytics
store, at any time T; see `leadledger.marketing.segments` for what the CLI and the API call.
"""
