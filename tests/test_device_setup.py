"""Setting up one device (resolver/device_setup.py, `lachan devices add`)."""

from __future__ import annotations

import plistlib
import subprocess
from pathlib import Path

import pytest
import yaml

from resolver.device_setup import add_to_config, mobileconfig, setup_for
from resolver.encrypted_config import EncryptedSettings, TlsFiles
from tests.stub_upstream import ROOT, lachan_command

SETTINGS = EncryptedSettings(
    listen_https=(("0.0.0.0", 443),), tls=TlsFiles(None, None, "dns.example.vn")
)


def test_the_hostname_and_url_name_the_device_and_a_lone_odd_port_is_shown() -> None:
    setup = setup_for("kid-an", SETTINGS)
    assert setup.private_dns == "kid-an.dns.example.vn"
    assert setup.doh_url == "https://dns.example.vn/dns-query/kid-an"
    odd = EncryptedSettings(listen_https=(("::", 8443),), tls=SETTINGS.tls)
    assert setup_for("lab-01", odd).doh_url == "https://dns.example.vn:8443/dns-query/lab-01"


def test_the_apple_profile_is_a_dns_settings_payload_with_the_device_url() -> None:
    profile = plistlib.loads(mobileconfig(setup_for("kid-an", SETTINGS)))
    assert profile["PayloadType"] == "Configuration"
    (payload,) = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.dnsSettings.managed"
    assert payload["DNSSettings"] == {
        "DNSProtocol": "HTTPS",
        "ServerURL": "https://dns.example.vn/dns-query/kid-an",
    }
    assert profile["PayloadUUID"] != payload["PayloadUUID"]


def test_a_device_line_goes_under_devices_and_leaves_the_rest_untouched() -> None:
    text = "# my site\nsite: {id: x}\ndevices:   # per child\n  lab-01: school\nworkers: 1\n"
    added = add_to_config(text, "kid-an", "under16")
    assert added.startswith("# my site\nsite: {id: x}\ndevices:   # per child\n  kid-an: under16\n")
    assert yaml.safe_load(added)["devices"] == {"lab-01": "school", "kid-an": "under16"}
    assert yaml.safe_load(add_to_config("workers: 1", "kid-an", "under16"))["devices"] == {
        "kid-an": "under16"
    }
    with pytest.raises(ValueError, match="inline"):
        add_to_config("devices: {a: school}\n", "kid-an", "under16")
    with pytest.raises(ValueError, match="one lower-case DNS label"):
        add_to_config("", "Kid An", "under16")


def _lachan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lachan_command() + list(args), capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_devices_add_writes_the_config_prints_the_names_and_writes_a_mobileconfig(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lachan.yaml"
    path.write_text(
        f'upstreams: ["127.0.0.1:9"]\nlists: {{enabled: false}}\npolicies: {{dir: "{ROOT / "policies"}"}}\n'
        "tls: {cert: c.pem, key: k.pem, server_name: dns.example.vn}\nlisten_https: ['127.0.0.1:8443']\n",
        encoding="utf-8",
    )
    done = _lachan(
        "devices", "add", "kid-an", "--profile", "under16", "--config", str(path), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Android Private DNS: kid-an.dns.example.vn" in done.stdout
    assert "DoH URL: https://dns.example.vn:8443/dns-query/kid-an" in done.stdout
    assert yaml.safe_load(path.read_text())["devices"] == {"kid-an": "under16"}
    profile = plistlib.loads((tmp_path / "kid-an.mobileconfig").read_bytes())
    assert profile["PayloadContent"][0]["DNSSettings"]["ServerURL"].endswith("/dns-query/kid-an")
    again = _lachan(
        "devices", "add", "kid-an", "--profile", "school", "--config", str(path), cwd=tmp_path
    )
    assert again.returncode == 1 and "devices.kid-an: already set (profile under16)" in again.stderr
    wrong = _lachan(
        "devices", "add", "lab-01", "--profile", "nope", "--config", str(path), cwd=tmp_path
    )
    assert wrong.returncode == 1 and "--profile nope: no such profile" in wrong.stderr
    assert "Traceback" not in again.stderr + wrong.stderr


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_the_config_as_it_was(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lachan.yaml"
    path.write_text(
        f'upstreams: ["127.0.0.1:9"]\nlists: {{enabled: false}}\npolicies: {{dir: "{ROOT / "policies"}"}}\n'
        "tls: {cert: c.pem, key: k.pem, server_name: dns.example.vn}\nlisten_https: ['127.0.0.1:8443']\n",
        encoding="utf-8",
    )
    before = path.read_bytes()
    target = tmp_path / "no-such-folder" / "kid-an.mobileconfig"
    done = _lachan("devices", "add", "kid-an", "--profile", "under16", "--config", str(path),
                   "--output", str(target), cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1, f"Error: --output {target}: cannot write: No such file or directory\n"
    )  # fmt: skip
    assert path.read_bytes() == before  # the device is not half-added: adding it again works
