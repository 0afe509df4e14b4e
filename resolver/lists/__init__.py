"""Blocklists: parsing real list formats, compiling a shared index, refreshing safely."""
