"""Device IDs from TLS server names, and certificate loading (resolver/transport/tls.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_helpers import make_pki

from resolver.errors import ConfigError
from resolver.transport.tls import ALPN_DOT, device_from_sni, load_context


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
