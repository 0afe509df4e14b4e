"""A test CA and server certificates made with ``cryptography``, and lachan with encrypted listeners."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.stub_upstream import ROOT, free_port

SERVER_NAME = "dns.example.vn"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def make_pki(
    folder: Path,
    names: tuple[str, ...] = (SERVER_NAME, "*." + SERVER_NAME),
    days: int = 30,
    prefix: str = "",
    ips: tuple[str, ...] = ("127.0.0.1",),
) -> Pki:
    """A CA and a server chain for ``names`` valid for ``days`` (PEM files in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("lachan test CA"))
        .issuer_name(_name("lachan test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    # days < 0: a certificate that expired that many days ago (valid for the day before)
    since = datetime.timedelta(hours=1) if days > 0 else datetime.timedelta(days=1 - days)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - since)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names]
                + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            ),
            False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Pki(
        folder / f"{prefix}ca.pem", folder / f"{prefix}cert.pem", folder / f"{prefix}key.pem"
    )
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.cert.write_bytes(leaf.public_bytes(pem))
    paths.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def client_context(pki: Pki, alpn: tuple[str, ...] = ("dot",)) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.set_alpn_protocols(list(alpn))
    return context


def encrypted_config(pki: Pki, dot: int = 0, doh: int = 0, extra: str = "") -> str:
    """A config with the repository's profiles, default isp-default, and two devices."""
    lines = [
        "lists: {enabled: false}",
        f'policies: {{dir: "{ROOT / "policies"}"}}',
        "clients: {default: isp-default}",
        f'tls: {{cert: "{pki.cert}", key: "{pki.key}", server_name: {SERVER_NAME}}}',
        "devices: {kid-an: under16, lab-01: school}",
    ]
    if dot:
        lines.append(f'listen_tls: ["127.0.0.1:{dot}", "[::1]:{dot}"]')
    if doh:
        lines.append(f'listen_https: ["127.0.0.1:{doh}", "[::1]:{doh}"]')
    return "\n".join(lines) + "\n" + extra


def ports() -> int:
    return free_port(("127.0.0.1", "::1"))


def wait_for_port(port: int, host: str = "127.0.0.1") -> None:
    """Until a TCP listener accepts on ``port`` (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}")
