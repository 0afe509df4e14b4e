"""Profiles and the pure per-query decision: safe search, schedules, keywords, anti-bypass.

Import from the modules (``policy.decide``, ``policy.decision``, ``policy.loader``,
``policy.profile``): a package ``__init__`` that imported them would sit in an import cycle
with each of them (tests/test_import_graph.py).
"""
