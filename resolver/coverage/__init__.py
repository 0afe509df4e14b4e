"""Coverage of registered schools and ISPs: registry, ledger/Prometheus status, probes, canary."""
