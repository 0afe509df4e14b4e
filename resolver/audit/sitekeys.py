"""Which public key verifies which site: ``SITE=KEY`` options and the coverage registry."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from resolver.audit.keys import INLINE_PREFIX, load_public_key
from resolver.audit.report import ledger_site
from resolver.errors import AuditError


def site_keys(
    specs: Sequence[str], registry: str | None, ledgers: Sequence[Path]
) -> dict[str, Ed25519PublicKey]:
    """Site id -> key from ``--public-key SITE=KEY`` and ``--registry``; a bare KEY only when
    every ledger names the same site (the key is then that site's, by the auditor's word)."""
    keys: dict[str, Ed25519PublicKey] = {}
    if registry:
        from resolver.coverage.registry import load_registry

        keys.update({s.id: s.public_key for s in load_registry(Path(registry)) if s.public_key})
    for spec in specs:
        site, key = _split(spec)
        if site is None:
            site = _only_site(ledgers, spec)
        if site in keys:
            raise AuditError(f"--public-key {spec}: site {site!r} already has a key")
        keys[site] = load_public_key(key)
    return keys


def _split(spec: str) -> tuple[str | None, str]:
    if spec.startswith(INLINE_PREFIX) or "=" not in spec:
        return None, spec
    site, _, key = spec.partition("=")
    return site.strip(), key.strip()


def _only_site(ledgers: Sequence[Path], spec: str) -> str:
    sites = {ledger_site(p) for p in ledgers} - {None}
    if len(sites) != 1:
        raise AuditError(
            f"--public-key {spec}: the ledgers name {len(sites)} sites; "
            "bind each key to its site with --public-key SITE=FILE or --registry"
        )
    return str(sites.pop())
