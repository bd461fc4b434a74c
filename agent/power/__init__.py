"""Power accounting: CPU time per stage now; the ledger and reports come with [6/7]."""
