"""Site keys: 0600 private key, no overwrite, PEM and inline public keys, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from resolver.audit.keys import (
    inline_public,
    key_id,
    load_private_key,
    load_public_key,
    write_keypair,
)
from resolver.errors import AuditError


def test_keygen_modes_and_round_trip(tmp_path: Path) -> None:
    private, public = write_keypair(tmp_path / "k")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    pub = load_public_key(public)
    assert key_id(load_private_key(private).public_key()) == key_id(pub)
    inline = inline_public(pub)
    assert inline.startswith("ed25519:") and key_id(load_public_key(inline)) == key_id(pub)
    (tmp_path / "inline.pub").write_text(inline + "\n")
    assert key_id(load_public_key("inline.pub", base=tmp_path)) == key_id(pub)


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    write_keypair(tmp_path)
    before = (tmp_path / "audit.key").read_bytes()
    with pytest.raises(AuditError, match="already exists"):
        write_keypair(tmp_path)
    assert (tmp_path / "audit.key").read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAA==\n"])
def test_bad_key_files(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(content)
    with pytest.raises(AuditError, match=str(bad)):
        load_public_key(bad)
    with pytest.raises(AuditError, match=str(bad)):
        load_private_key(bad)


def test_bad_inline_and_missing(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="inline"):
        load_public_key("ed25519:!!!")
    with pytest.raises(AuditError, match="cannot read"):
        load_public_key(tmp_path / "absent.pub")
