"""Signed, hash-chained audit ledger of aggregate counts, its verifier and its reports."""
