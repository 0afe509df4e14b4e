"""Discovery of Designated Resolvers (RFC 9462): SVCB records naming our DoT and DoH listeners."""

from __future__ import annotations

from .encrypted_config import EncryptedSettings
from .wire import text_to_wire

DDR_NAME = text_to_wire("_dns.resolver.arpa")
_ALPN, _PORT, _DOHPATH = 1, 3, 7  # SvcParamKeys (RFC 9460 14.3.2, RFC 9461 5)


def _param(key: int, value: bytes) -> bytes:
    return key.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


def _svcb(priority: int, target: str, alpn: str, port: int, dohpath: str = "") -> bytes:
    params = _param(_ALPN, bytes((len(alpn),)) + alpn.encode()) + _param(
        _PORT, port.to_bytes(2, "big")
    )
    if dohpath:
        params += _param(_DOHPATH, dohpath.encode())
    return priority.to_bytes(2, "big") + text_to_wire(target) + params


def svcb_rdata(settings: EncryptedSettings) -> tuple[bytes, ...]:
    """The SVCB rdata advertising the encrypted listeners; none without a server name.

    DoT first (priority 1): every DDR client speaks it; then DoH at ``/dns-query`` (the bare
    path: no device ID, so the address chooses the profile as it did over plain DNS).
    """
    name = settings.tls.server_name
    if not name:
        return ()
    records = []
    if settings.listen_tls:
        records.append(_svcb(1, name, "dot", settings.listen_tls[0][1]))
    if settings.listen_https:
        port = settings.listen_https[0][1]
        records.append(_svcb(len(records) + 1, name, "h2", port, "/dns-query{?dns}"))
    return tuple(records)
