from __future__ import annotations

import pytest

from resolver.lists.names import NameError_, normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM.", "example.com"),
        ("  www.example.com  ", "www.example.com"),
        ("cốccốc.vn", "xn--cccc-0x5ac.vn"),
        ("www.Vant6.com", "www.vant6.com"),
        ("0------------0-------------0.0n-line.biz", "0------------0-------------0.0n-line.biz"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalise_accepts(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("a..b", "invalid domain name"),
        ("a" * 64 + ".com", "invalid domain name"),
        (".".join(["abcdefghi"] * 26), "longer than 253"),
        ("1.2.3.4", "IP address"),
        ("10.0.0", "IP address"),
        ("::1", "invalid domain name"),
        ("http://x.com/a", "invalid domain name"),
        ("exa mple.com", "invalid domain name"),
        ("xn--.com\u00e9\u0301\u0000", "internationalised"),
    ],
)
def test_normalise_rejects(raw: str, reason: str) -> None:
    with pytest.raises(NameError_, match=reason):
        normalise(raw)
