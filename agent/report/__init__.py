"""The power report: its data from the ledger, and its renderings (terminal, HTML page)."""
