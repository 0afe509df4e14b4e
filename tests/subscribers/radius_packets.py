"""Accounting-Request bytes built with pyrad, for the tests (radclient sends the real ones)."""

from __future__ import annotations

from pyrad.packet import AcctPacket

from resolver.subscribers.radius import load_dictionary

DICTIONARY = load_dictionary()
SECRET = b"s3cret-for-tests"


def accounting(status: str, secret: bytes = SECRET, **attributes: object) -> bytes:
    packet = AcctPacket(secret=secret, dict=DICTIONARY)
    packet["Acct-Status-Type"] = status
    for key, value in attributes.items():
        packet[key.replace("_", "-")] = value
    return bytes(packet.RequestPacket())
