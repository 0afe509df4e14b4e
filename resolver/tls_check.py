"""Checks of the TLS certificate for `lachan check-config` and the expiry metric."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from .encrypted_config import EncryptedSettings
from .errors import ConfigError

WARN_DAYS = 14  # certbot renews at 30 days left: 14 means renewal has been failing for weeks
_REFUSED = ": DoT and DoH clients refuse it until it is replaced; plain DNS is served"


@dataclass(frozen=True, slots=True)
class CertificateReport:
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    not_after: float  # Unix time the leaf certificate expires (0 when unreadable)


def certificate_names(leaf: x509.Certificate) -> tuple[str, ...]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(name.lower() for name in san.value.get_values_for_type(x509.DNSName))


def covers(pattern: str, name: str) -> bool:
    """Does a certificate name (``*.`` for one label, RFC 6125) cover ``name``?"""
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == name


def read_leaf(cert: Path) -> x509.Certificate:
    """The first certificate of a PEM chain (certbot's fullchain.pem starts with the leaf)."""
    try:
        return x509.load_pem_x509_certificates(cert.read_bytes())[0]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"tls.cert: cannot read {cert}: {exc}") from None


def check(settings: EncryptedSettings, source: str, now: float) -> CertificateReport:
    """Key matches certificate, names cover server_name and each device's name, expiry."""
    tls = settings.tls
    if tls.cert is None or tls.key is None:
        return CertificateReport((), (), 0.0)
    try:
        leaf = read_leaf(tls.cert)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert, tls.key)
    except ConfigError as exc:
        return CertificateReport((f"{source}: {exc}",), (), 0.0)
    except (OSError, ssl.SSLError) as exc:
        problem = f"{source}: tls.key: {tls.key} does not match tls.cert {tls.cert} ({exc})"
        return CertificateReport((problem,), (), 0.0)
    return _names_and_dates(settings, leaf, source, now)


def _names_and_dates(
    settings: EncryptedSettings, leaf: x509.Certificate, source: str, now: float
) -> CertificateReport:
    """Names that do not cover the server (or a device) and an expired certificate are
    warnings, not problems: serve runs with them, and DoT/DoH clients simply refuse the
    certificate, while plain DNS goes on. check-config is the unit's ExecStartPre, so
    failing it would turn a failed certbot renewal, or one device's name missing from the
    certificate, into no DNS at all at the next restart."""
    names = certificate_names(leaf)
    wanted = [settings.tls.server_name] if settings.tls.server_name else []
    wanted += [f"{device}.{settings.tls.server_name}" for device in sorted(settings.devices)]
    warnings = [
        f"{source}: tls.server_name: the certificate does not cover {name} "
        f"(it names {', '.join(names) or 'nothing'}; device IDs need *.{settings.tls.server_name})"
        f"{_REFUSED}"
        for name in wanted
        if not any(covers(pattern, name) for pattern in names)
    ][:3]  # the first few say enough: usually one missing wildcard
    not_after = leaf.not_valid_after_utc.timestamp()
    left = (not_after - now) / 86400
    if left < 0:
        warnings.append(
            f"{source}: tls.cert: the certificate expired {-left:.0f} days ago{_REFUSED}"
        )
    elif left < WARN_DAYS:
        warnings.append(f"{source}: tls.cert: the certificate expires in {left:.1f} days")
    return CertificateReport((), tuple(warnings), not_after)
