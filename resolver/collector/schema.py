"""The collector's tables, as numbered migrations applied in order (a version table records them)."""

from __future__ import annotations

# Each entry is one migration; never edit a shipped one, append a new one instead.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE sites (site TEXT PRIMARY KEY, public_key TEXT NOT NULL,"
        " enrolled_at BIGINT NOT NULL)",
        # One row per stored record; `line` is the exact signed ledger line.
        "CREATE TABLE records (site TEXT NOT NULL, instance TEXT NOT NULL, seq BIGINT NOT NULL,"
        " period_start BIGINT NOT NULL, period_end BIGINT NOT NULL, digest TEXT NOT NULL,"
        " line TEXT NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (site, instance, seq))",
        "CREATE INDEX records_by_end ON records (site, period_end)",
        # The chain's tip per instance: what the next record must link to.
        "CREATE TABLE chains (site TEXT NOT NULL, instance TEXT NOT NULL, last_seq BIGINT NOT NULL,"
        " last_digest TEXT NOT NULL, last_period_end BIGINT NOT NULL, period BIGINT NOT NULL,"
        " index_time BIGINT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (site, instance))",
        "CREATE TABLE incidents (site TEXT NOT NULL, instance TEXT NOT NULL, seq BIGINT NOT NULL,"
        " kind TEXT NOT NULL, detail TEXT NOT NULL, at BIGINT NOT NULL)",
        "CREATE INDEX incidents_by_site ON incidents (site)",
        "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE TABLE sessions (token TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL,"
        " expires BIGINT NOT NULL)",
        "CREATE TABLE access_log (at BIGINT NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL,"
        " detail TEXT NOT NULL)",
    ),
    (
        # Blocks per site, month (in the collector's time zone) and category, summed at ingest
        # so the dashboard never re-reads a year of records; category "*" = all queries.
        "CREATE TABLE monthly (site TEXT NOT NULL, month TEXT NOT NULL, category TEXT NOT NULL,"
        " n BIGINT NOT NULL, PRIMARY KEY (site, month, category))",
    ),
    (
        # The province-wide sums group by month and category: read them from the index alone.
        "CREATE INDEX monthly_by_month ON monthly (month, category, n)",
    ),
    (
        # The end of the latest period with queries: a resolver nobody uses covers nobody.
        "ALTER TABLE chains ADD COLUMN last_active BIGINT NOT NULL DEFAULT 0",
    ),
)
