"""RADIUS accounting (RFC 2866, RFC 2869 interim updates) to address bindings, pure.

``decode`` turns one datagram into a ``Request`` (or a counted rejection); ``action_of``
says what it does to the store. pyrad codes the packets; the listener in ``radius_listen``
does the I/O. A request is answered only after its change is stored, as RFC 2866 section
2 asks: a NAS that gets no answer retransmits, so nothing is lost while the store is down.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from pyrad.dictionary import Dictionary
from pyrad.packet import AccountingRequest, AcctPacket

from .replica import Binding
from .settings import RadiusSettings

DICTIONARY = Path(__file__).with_name("radius.dictionary")
START, STOP, INTERIM, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8
# The bounded values of lachan_radius_requests_total{result}.
RESULTS = ("ok", "unknown_nas", "bad_authenticator", "malformed", "ignored", "store_error")
_STATUS_NAMES = {
    "Start": START, "Stop": STOP, "Interim-Update": INTERIM,
    "Accounting-On": ACCOUNTING_ON, "Accounting-Off": ACCOUNTING_OFF,
}  # fmt: skip
_ADDRESS_ATTRIBUTES = ("Framed-IP-Address", "Framed-IPv6-Prefix", "Delegated-IPv6-Prefix")


@dataclass(frozen=True, slots=True)
class Request:
    """A verified Accounting-Request, and the bytes of its Accounting-Response."""

    status: int
    subscriber: str
    prefixes: tuple[str, ...]
    nas: str
    reply: bytes


@dataclass(frozen=True, slots=True)
class Action:
    """What a request does to the store: bind, unbind, or forget a NAS's bindings."""

    kind: str  # bind | unbind | unbind_nas | none
    prefixes: tuple[str, ...] = ()
    binding: Binding | None = None
    nas: str = ""


def load_dictionary() -> Dictionary:
    return Dictionary(str(DICTIONARY))


def read_secret(path: Path) -> bytes:
    """The shared secret; refused (OSError/ValueError) if group or others may read it."""
    mode = path.stat().st_mode
    if mode & 0o077:
        raise ValueError(f"{path}: readable by group or others (chmod 600 it)")
    secret = path.read_bytes().strip()
    if not secret:
        raise ValueError(f"{path}: empty")
    return secret


def nas_allowed(source: str, settings: RadiusSettings) -> bool:
    try:
        address = ipaddress.ip_address(source.partition("%")[0])
    except ValueError:
        return False
    return any(address in network for network in settings.nas)


def decode(
    raw: bytes, source: str, secret: bytes, settings: RadiusSettings, dictionary: Dictionary
) -> Request | str:
    """The verified request, or the ``RESULTS`` reason it is rejected."""
    if not nas_allowed(source, settings):
        return "unknown_nas"
    try:
        packet = AcctPacket(secret=secret, dict=dictionary, packet=raw)
        if packet.code != AccountingRequest:
            return "malformed"
        if not packet.VerifyAcctRequest():
            return "bad_authenticator"
        status = _status(_first(packet, "Acct-Status-Type"))
        subscriber = _text(_first(packet, settings.id_attribute))
        prefixes = tuple(_prefix(v) for a in _ADDRESS_ATTRIBUTES for v in packet.get(a) or ())
        nas = str(_first(packet, "NAS-IP-Address") or _first(packet, "NAS-IPv6-Address") or source)
        reply = packet.CreateReply().ReplyPacket()
    except Exception:  # noqa: BLE001 - pyrad raises many kinds on hostile bytes; none may crash us
        return "malformed"
    return Request(status, subscriber, prefixes, nas, reply)


def action_of(request: Request, now: float) -> Action:
    """The store change a verified request asks for (``none`` for what lachan ignores)."""
    if request.status in (START, INTERIM) and request.subscriber and request.prefixes:
        return Action("bind", request.prefixes, Binding(request.subscriber, now, request.nas))
    if request.status == STOP and request.prefixes:
        return Action("unbind", request.prefixes)
    if request.status in (ACCOUNTING_ON, ACCOUNTING_OFF):
        return Action("unbind_nas", nas=request.nas)  # the NAS rebooted: its sessions are gone
    return Action("none")


def _status(value: object) -> int:
    """pyrad gives a named value (``Start``) for known numbers, the number otherwise."""
    if isinstance(value, int):
        return value
    return _STATUS_NAMES.get(str(value), 0)


def _first(packet: AcctPacket, attribute: str) -> object:
    values = packet.get(attribute)
    return values[0] if values else None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _prefix(value: object) -> str:
    network = ipaddress.ip_network(str(value), strict=False)
    return str(network)
