"""Ed25519 site keys: generate, write (private key 0600), load from a file or an inline string."""

from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from resolver.audit.canonical import sha256_hex
from resolver.errors import AuditError

PRIVATE_NAME = "audit.key"
PUBLIC_NAME = "audit.pub"
INLINE_PREFIX = "ed25519:"


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short stable name for a public key: the first 16 hex digits of its SHA-256."""
    return sha256_hex(raw_public(key))[:16]


def inline_public(key: Ed25519PublicKey) -> str:
    """The one-line form ``ed25519:<base64>`` that a site registry can hold inline."""
    return INLINE_PREFIX + base64.b64encode(raw_public(key)).decode("ascii")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never overwrite an existing key; losing a site key orphans its whole ledger.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what we asked for
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Create ``audit.key`` (PKCS#8 PEM, mode 0600) and ``audit.pub`` (PEM) in ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuditError(f"{out_dir}: cannot create the key folder: {exc.strerror}") from None
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise AuditError(f"{path}: already exists; refusing to overwrite a site key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return private_path, public_path


def private_key_problem(path: Path) -> str | None:
    """One line when the private key at ``path`` is open to group or others, else None.

    Anyone who can read the key can sign a ledger as this site, so a key that is not 0600
    (or stricter) is refused, as ssh refuses one. A missing file is the loader's to report.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path}: private key is open to group or others (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    return None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key; a wrong file or a readable-by-all one is one line."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuditError(f"{path}: cannot read private key: {exc.strerror}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise AuditError(f"{path}: not a PEM private key without passphrase") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditError(f"{path}: not an Ed25519 private key")
    problem = private_key_problem(path)  # after the kind: a public key is named as such
    if problem:
        raise AuditError(problem)
    return key


def parse_inline_public(text: str, where: str) -> Ed25519PublicKey:
    """Parse ``ed25519:<base64 of 32 bytes>``."""
    try:
        raw = base64.b64decode(text[len(INLINE_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise AuditError(f"{where}: not a valid inline ed25519 public key") from None


def load_public_key(spec: str | Path, base: Path | None = None) -> Ed25519PublicKey:
    """Load a public key from an inline ``ed25519:...`` string or a PEM/inline file path."""
    text = str(spec).strip()
    if text.startswith(INLINE_PREFIX):
        return parse_inline_public(text, "public key")
    path = Path(text)
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"{path}: cannot read public key: {exc.strerror}") from None
    if data.strip().startswith(INLINE_PREFIX.encode()):
        return parse_inline_public(data.decode("ascii", "replace").strip(), str(path))
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise AuditError(f"{path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: not an Ed25519 public key")
    return key
