"""Power accounting: CPU time per stage (the ledger and reports build on it)."""
