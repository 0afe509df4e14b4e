"""Session cookies are Secure over TLS, and behind a TLS proxy only when the proxy is trusted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from collector_helpers import certificate, keys, registry_of
from serve_fixture import collector_serve

from resolver.collector.auth import add_user
from resolver.collector.db import Database

PASSWORD = "mật-khẩu-đủ-dài"


@pytest.fixture
def province(tmp_path: Path) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    database = Database(db)
    database.migrate()
    add_user(database, "kiem-tra", "auditor", PASSWORD)
    database.close()
    _, public = keys(tmp_path / "thpt-a")
    return db, registry_of(tmp_path / "sites.yaml", {"thpt-a": public})


def _cookies(base: str, verify: bool | str = True, **headers: str) -> dict[str, str]:
    """Log in; each cookie set on the way, by name, with its attributes as sent.

    Cookies are carried by hand: behind a TLS proxy the browser speaks https and sends Secure
    cookies back, while this client speaks plain HTTP to the collector as the proxy would.
    """
    form = requests.get(base + "/login", timeout=10, verify=verify, headers=headers)
    sent = form.raw.headers.getlist("Set-Cookie")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    pre = sent[0].split(";", 1)[0]
    reply = requests.post(base + "/login", timeout=30, allow_redirects=False, verify=verify,
                          headers={**headers, "Cookie": pre},
                          data={"csrf": csrf.group(1), "name": "kiem-tra",
                                "password": PASSWORD})  # fmt: skip
    assert reply.status_code == 302 and reply.headers["Location"] == "/"
    sent += reply.raw.headers.getlist("Set-Cookie")
    return {line.split("=", 1)[0]: line for line in sent if "Max-Age=0" not in line}


def _secure(cookie: str) -> bool:
    return bool(re.search(r";\s*Secure(;|$)", cookie, re.I))


def test_behind_a_trusted_proxy_forwarding_https_the_cookies_are_secure(province) -> None:
    db, registry = province
    with collector_serve(db, registry, "--trusted-proxy", "127.0.0.0/8") as base:
        proxied = _cookies(base, **{"X-Forwarded-Proto": "https"})
        plain = _cookies(base)  # the proxy's own plain-HTTP leg, or a proxy that says http
    assert _secure(proxied["lachan_login"]) and _secure(proxied["lachan_session"])
    assert not _secure(plain["lachan_login"]) and not _secure(plain["lachan_session"])


def test_an_untrusted_clients_x_forwarded_proto_is_ignored(province) -> None:
    db, registry = province
    for flags in ((), ("--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "fd00::/8")):
        with collector_serve(db, registry, *flags) as base:
            cookies = _cookies(base, **{"X-Forwarded-Proto": "https",
                                        "X-Forwarded-For": "10.0.0.1"})  # fmt: skip
        assert not _secure(cookies["lachan_session"]), flags


def test_over_the_collectors_own_tls_the_cookies_are_always_secure(province, tmp_path) -> None:
    db, registry = province
    cert, key = certificate(tmp_path)
    with collector_serve(db, registry, "--tls-cert", str(cert), "--tls-key", str(key),
                         "--trusted-proxy", "127.0.0.1", ca=str(cert)) as base:  # fmt: skip
        told_http = _cookies(base, verify=str(cert), **{"X-Forwarded-Proto": "http"})
        direct = _cookies(base, verify=str(cert))
    assert _secure(told_http["lachan_session"]) and _secure(direct["lachan_session"])
    assert _secure(direct["lachan_login"])


def test_a_bad_trusted_proxy_is_one_line_at_start(province) -> None:
    import subprocess
    import sys

    db, registry = province
    done = subprocess.run([sys.executable, "-m", "resolver.cli", "collector", "serve", "--db", db,
                           "--registry", str(registry), "--trusted-proxy", "10.0.0.0/33"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1, "error: --trusted-proxy '10.0.0.0/33': not an IP address or CIDR network\n")  # fmt: skip
