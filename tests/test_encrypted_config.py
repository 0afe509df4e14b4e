"""The encrypted-listener keys of the config (resolver/encrypted_config.py) and their flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from resolver import config, config_source
from resolver.encrypted_config import EncryptedSettings, TlsFiles, check_profiles, with_flags
from resolver.errors import ConfigError

BASE = "upstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(BASE + text, "c.yaml", Path("/etc/lachan"))
    return caught.value.problems


def test_listeners_tls_files_and_devices_are_read_with_paths_from_the_config_folder() -> None:
    cfg = config.parse(
        BASE + "listen_tls: ['127.0.0.1:853', '[::1]:853']\nlisten_https: ['0.0.0.0:443']\n"
        "tls: {cert: fullchain.pem, key: /k/privkey.pem, server_name: DNS.Example.VN.}\n"
        "devices: {kid-an: under16, lab-01: school}\nrequire_device_id: true\n",
        "c.yaml",
        Path("/etc/lachan"),
    )
    enc = cfg.encrypted
    assert enc.listen_tls == (("127.0.0.1", 853), ("::1", 853))
    assert enc.listen_https == (("0.0.0.0", 443),)
    assert enc.tls == TlsFiles(
        Path("/etc/lachan/fullchain.pem"), Path("/k/privkey.pem"), "dns.example.vn"
    )
    assert enc.devices == {"kid-an": "under16", "lab-01": "school"} and enc.require_device_id


def test_no_encrypted_keys_means_no_encrypted_listeners() -> None:
    assert not config.parse(BASE, "c.yaml").encrypted.enabled


def test_each_mistake_is_one_line_naming_file_and_key() -> None:
    problems = _problems(
        "listen_tls: ['localhost:853', 5, '127.0.0.1:853']\ntls: {cert: a.pem, color: red}\n"
        "devices: {Kid_An: under16, ok: ''}\nrequire_device_id: maybe\n"
    )
    assert any(p.startswith("c.yaml: listen_tls[0]: not an IP address") for p in problems)
    assert any(p.startswith("c.yaml: listen_tls[1]: must be a string") for p in problems)
    assert any(p.startswith("c.yaml: tls.color: unknown key") for p in problems)
    assert any(p.startswith("c.yaml: devices.Kid_An: a device ID is one") for p in problems)
    assert any(p.startswith("c.yaml: devices.ok: must name a profile") for p in problems)
    assert any(p.startswith("c.yaml: require_device_id: must be a boolean") for p in problems)
    assert any(p.startswith("c.yaml: tls: listen_tls/listen_https need tls.cert") for p in problems)


def test_a_device_naming_a_missing_profile_is_one_line() -> None:
    settings = EncryptedSettings(devices={"kid-an": "under61"})
    with pytest.raises(ConfigError) as caught:
        check_profiles(settings, {"under16": object()}, "c.yaml")
    assert caught.value.problems == ["c.yaml: devices.kid-an: no such profile: 'under61'"]


def test_flags_replace_listeners_and_files_and_insist_on_both_files() -> None:
    settings = with_flags(EncryptedSettings(), ("[::1]:8853",), (), "c.pem", "k.pem")
    assert settings.listen_tls == (("::1", 8853),) and settings.tls.cert == Path("c.pem")
    with pytest.raises(ConfigError) as caught:
        with_flags(EncryptedSettings(), (), ("127.0.0.1:8443", "nope"), None, None)
    assert caught.value.problems[0].startswith("--listen-https nope:")
    assert "need --tls-cert and --tls-key" in caught.value.problems[1]


def test_the_config_source_applies_the_tls_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(BASE, encoding="utf-8")
    flags = (("127.0.0.1:8853",), ("127.0.0.1:8443",), "c.pem", "k.pem")
    cfg = config_source.ConfigSource(str(path), tls_flags=flags)()
    assert cfg.encrypted.listen_tls == (("127.0.0.1", 8853),)
    assert cfg.encrypted.listen_https == (("127.0.0.1", 8443),)
