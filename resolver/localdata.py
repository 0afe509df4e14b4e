"""RPZ local data as wire rdata: A, AAAA and TXT records a list asks to answer with."""

from __future__ import annotations

import ipaddress
import re

from .wire import TYPE_A, TYPE_AAAA, TYPE_TXT

_TXT_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_ESCAPE = re.compile(r"\\(\d{3}|.)")
TYPES = {"A": TYPE_A, "AAAA": TYPE_AAAA, "TXT": TYPE_TXT}


def rdata(rtype: str, text: str) -> tuple[int, bytes]:
    """(type code, rdata) of one record; ValueError for data that is not valid for the type."""
    kind = rtype.upper()
    if kind == "A":
        return TYPE_A, ipaddress.IPv4Address(text.strip()).packed
    if kind == "AAAA":
        return TYPE_AAAA, ipaddress.IPv6Address(text.strip()).packed
    if kind == "TXT":
        return TYPE_TXT, _txt(text)
    raise ValueError(f"{rtype} is not answered as local data")


def _txt(text: str) -> bytes:
    """Character strings of a zone-file TXT rdata (quoted or bare words, \\X and \\DDD)."""
    out = []
    for quoted, bare in _TXT_TOKEN.findall(text):
        raw = _unescape(quoted if quoted or not bare else bare)
        for i in range(0, max(len(raw), 1), 255):
            chunk = raw[i : i + 255]
            out.append(bytes([len(chunk)]) + chunk)
    if not out:
        raise ValueError("TXT record without a string")
    return b"".join(out)


def _unescape(text: str) -> bytes:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        return chr(int(code)) if code.isdigit() else code

    decoded = _ESCAPE.sub(one, text)
    if any(ord(c) > 255 for c in decoded):
        return decoded.encode("utf-8")
    return decoded.encode("latin-1")


def records_for(local: tuple[tuple[str, str], ...], qtype: int) -> list[bytes]:
    """The rdata of every local record of the asked type (unusable records left out)."""
    out = []
    for rtype, text in local:
        if TYPES.get(rtype.upper()) != qtype:
            continue
        try:
            out.append(rdata(rtype, text)[1])
        except ValueError:
            continue  # the RPZ parser rejects these; an older index must not break answers
    return out
