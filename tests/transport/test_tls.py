"""Device IDs from TLS server names, and certificate loading (resolver/transport/tls.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tls_helpers import make_pki

from resolver.errors import ConfigError
from resolver.transport.tls import ALPN_DOT, device_from_sni, load_context
from tests.stub_upstream import lachan_command


@pytest.mark.parametrize(
    ("sni", "device"),
    [
        ("kid-an.dns.example.vn", "kid-an"),
        ("dns.example.vn", None),  # the bare name: no device
        ("", None),  # no SNI at all
        ("a.b.dns.example.vn", None),  # deeper names are not device IDs
        ("kid-an.dns.example.vn.evil.test", None),
        ("xdns.example.vn", None),
    ],
)
def test_the_device_id_is_the_first_label_under_the_server_name(
    sni: str, device: str | None
) -> None:
    assert device_from_sni(sni, "dns.example.vn") == device


def test_without_a_server_name_no_sni_names_a_device() -> None:
    assert device_from_sni("kid-an.dns.example.vn", "") is None


def test_a_key_that_does_not_match_the_certificate_is_one_line(tmp_path: Path) -> None:
    one, two = make_pki(tmp_path / "1"), make_pki(tmp_path / "2")
    with pytest.raises(ConfigError) as caught:
        load_context(one.cert, two.key, ALPN_DOT)
    assert str(caught.value).startswith("tls: cannot load certificate")


def test_serve_refuses_unloadable_tls_files_and_unknown_device_profiles_in_one_line(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path / "pki")
    config = tmp_path / "c.yaml"
    config.write_text("lists: {enabled: false}\ndevices: {kid-an: nosuch}\n", encoding="utf-8")
    base = lachan_command() + ["serve", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9"]
    flags = ["--listen-tls", "127.0.0.1:0", "--tls-key", str(pki.key)]
    missing = subprocess.run(
        base + flags + ["--tls-cert", str(tmp_path / "none.pem")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("--tls-cert/--tls-key: cannot load certificate") and "none.pem" in line
    unknown = subprocess.run(
        base + ["--config", str(config)], capture_output=True, text=True, timeout=30
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == f"{config}: devices.kid-an: no such profile: 'nosuch'"
