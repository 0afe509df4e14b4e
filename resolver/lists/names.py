"""Domain name normalisation for list entries: lowercase, no trailing dot, IDN as punycode."""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_NAME = 253  # presentation length without the trailing dot (RFC 1035 255 octets on the wire)

# Labels are LDH plus "_" (real lists hold _dmarc-style and underscore host names) and may
# start or end with "-": RFC 2181 allows any octets in DNS, and lists do carry such names, so
# rejecting them would silently stop blocking real names. Only empty, overlong or
# non-hostname characters are refused.
_LABEL = r"[a-z0-9_-]{1,63}"
_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_ALL_NUMERIC_TLD = re.compile(r".*\.[0-9]+$|[0-9]+$")


class NameError_(ValueError):
    """A list entry is not a usable domain name; the message is the reason."""


def normalise(raw: str) -> str:
    """Return ``raw`` as a lowercase, dot-free-at-the-end, punycode name or raise NameError_."""
    name = raw.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise NameError_("empty name")
    if not name.isascii():
        name = _to_punycode(name)
    if len(name) > MAX_NAME:
        raise NameError_(f"name longer than {MAX_NAME} characters")
    if _NAME_RE.fullmatch(name) is None:
        raise NameError_(f"invalid domain name {raw.strip()!r}")
    if _ALL_NUMERIC_TLD.fullmatch(name) is not None and _is_ip(name):
        raise NameError_(f"IP address {name!r} is not a domain name")
    return name


def _to_punycode(name: str) -> str:
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise NameError_(f"invalid internationalised name {name!r}: {exc}") from None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.replace(".", "").isdigit()  # "1.2.3" style partial addresses too
    return True


def is_ip_address(text: str) -> bool:
    """True for a literal IPv4 or IPv6 address (hosts-file first column)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def lines(text: str) -> list[str]:
    """Lines as editors and ``grep -n`` number them: split on LF only, a CR before it dropped.

    ``str.splitlines`` also splits on VT, FF, FS..RS, NEL, U+2028 and U+2029, which shifted
    the line numbers of rejected lines in reports.
    """
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
