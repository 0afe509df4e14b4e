"""The province's collector: receives signed ledgers, keeps each site's chain, shows coverage."""
