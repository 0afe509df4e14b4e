"""Certificate checks for `lachan check-config` (resolver/tls_check.py, commands/tls_config.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tls_helpers import SERVER_NAME, make_pki

from resolver.encrypted_config import EncryptedSettings, TlsFiles
from resolver.tls_check import check, covers
from tests.stub_upstream import ROOT, lachan_command

DAY = 86400.0


def _settings(cert: Path, key: Path, devices: dict[str, str] | None = None) -> EncryptedSettings:
    return EncryptedSettings(
        listen_tls=(("127.0.0.1", 853),),
        tls=TlsFiles(cert, key, SERVER_NAME),
        devices=devices or {},
    )


def test_a_wildcard_covers_one_label_only() -> None:
    assert covers("*.dns.example.vn", "kid-an.dns.example.vn")
    assert not covers("*.dns.example.vn", "dns.example.vn")
    assert not covers("*.dns.example.vn", "a.b.dns.example.vn")
    assert covers("dns.example.vn", "dns.example.vn")


def test_a_good_certificate_has_no_problem_and_reports_its_expiry(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, days=30)
    report = check(_settings(pki.cert, pki.key, {"kid-an": "under16"}), "c.yaml", time.time())
    assert report.problems == () and report.warnings == ()
    assert abs(report.not_after - (time.time() + 30 * DAY)) < 2 * 3600


def test_device_ids_need_the_wildcard_name(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, names=(SERVER_NAME,))
    assert check(_settings(pki.cert, pki.key), "c.yaml", time.time()).problems == ()
    report = check(_settings(pki.cert, pki.key, {"kid-an": "under16"}), "c.yaml", time.time())
    assert report.problems == ()  # serve runs: only that device's DoT/DoH is refused
    assert report.warnings == (
        "c.yaml: tls.server_name: the certificate does not cover kid-an.dns.example.vn "
        "(it names dns.example.vn; device IDs need *.dns.example.vn): DoT and DoH clients "
        "refuse it until it is replaced; plain DNS is served",
    )


def test_a_key_of_another_certificate_is_one_line(tmp_path: Path) -> None:
    one, two = make_pki(tmp_path / "1"), make_pki(tmp_path / "2")
    (problem,) = check(_settings(one.cert, two.key), "c.yaml", time.time()).problems
    assert problem.startswith(f"c.yaml: tls.key: {two.key} does not match tls.cert {one.cert}")


def test_expiry_warns_inside_14_days_and_after(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, days=30)
    settings = _settings(pki.cert, pki.key)
    assert check(settings, "c.yaml", time.time() + 15 * DAY).warnings == ()
    (warning,) = check(settings, "c.yaml", time.time() + 20 * DAY).warnings
    assert warning.startswith("c.yaml: tls.cert: the certificate expires in 10.")
    expired = check(settings, "c.yaml", time.time() + 40 * DAY)
    assert expired.problems == ()
    assert expired.warnings == (
        "c.yaml: tls.cert: the certificate expired 10 days ago: DoT and DoH clients refuse it "
        "until it is replaced; plain DNS is served",
    )


def test_an_expired_certificate_never_stops_plain_dns(tmp_path: Path) -> None:
    # check-config is lachan.service's ExecStartPre: failing it for a certificate whose
    # renewal failed stopped every plain-DNS client at the next restart, though serve runs.
    pki = make_pki(tmp_path, days=-3)
    config = tmp_path / "lachan.yaml"
    config.write_text(
        f'upstreams: ["127.0.0.1:9"]\nlists: {{enabled: false}}\n'
        f'policies: {{dir: "{ROOT / "policies"}"}}\nlisten_tls: ["127.0.0.1:8853"]\n'
        f'tls: {{cert: "{pki.cert}", key: "{pki.key}", server_name: {SERVER_NAME}}}\n'
    )
    checked = subprocess.run(
        lachan_command() + ["check-config", "--files-only", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    (line,) = checked.stderr.strip().splitlines()
    assert line == (
        f"warning: {config}: tls.cert: the certificate expired 3 days ago: DoT and DoH "
        "clients refuse it until it is replaced; plain DNS is served"
    )


def test_check_config_fails_in_one_line_for_a_wrong_key_and_passes_a_good_setup(
    tmp_path: Path,
) -> None:
    one, two = make_pki(tmp_path / "1"), make_pki(tmp_path / "2")
    base = (
        f'upstreams: ["127.0.0.1:9"]\nlists: {{enabled: false}}\n'
        f'policies: {{dir: "{ROOT / "policies"}"}}\nlisten_tls: ["127.0.0.1:8853"]\n'
        "devices: {kid-an: under16}\n"
    )
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(
        base + f'tls: {{cert: "{one.cert}", key: "{one.key}", server_name: {SERVER_NAME}}}\n'
    )
    bad.write_text(
        base + f'tls: {{cert: "{one.cert}", key: "{two.key}", server_name: {SERVER_NAME}}}\n'
    )
    ok = subprocess.run(
        lachan_command() + ["check-config", str(good)], capture_output=True, text=True, timeout=60
    )
    assert ok.returncode == 0 and ok.stdout.strip() == f"{good}: ok", ok.stderr
    fail = subprocess.run(
        lachan_command() + ["check-config", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert fail.returncode == 1
    (line,) = fail.stderr.strip().splitlines()
    assert line.startswith(f"{bad}: tls.key: {two.key} does not match tls.cert {one.cert}")
    assert "Traceback" not in fail.stderr
