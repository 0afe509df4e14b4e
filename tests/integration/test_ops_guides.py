"""The guides stay true: every config shown in docs/*.md is checked by the tool it is for.

lachan configs by ``lachan check-config``, dnsdist's by ``dnsdist --check-config``, the
nftables ruleset by ``nft -c -f``, the dnsmasq lines by ``dnsmasq --test``, the Prometheus
files by ``promtool check config``; files and ``lachan`` commands the guides name exist.
The dnsdist recipe itself is run end to end by test_ops_dnsdist.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.ops_helpers import DOCS, guide_blocks
from tests.stub_upstream import ROOT, lachan_command
from tests.tools import require

GUIDES = ("isp-guide.md", "school-guide.md")
LACHAN_KEYS = {
    "site", "listen", "upstreams", "upstream", "cache", "server", "tcp", "lists", "policies",
    "clients", "acl", "ratelimit", "metrics", "querylog", "audit", "workers", "console",
    "subscribers",
}  # fmt: skip
LACHAN_KEYS |= {"listen_tls", "listen_https", "tls", "devices", "require_device_id"}
PROMETHEUS_KEYS = {"global", "scrape_configs", "rule_files"}


def _yaml_blocks(kind: set[str]) -> list[tuple[str, int, str]]:
    found = []
    for guide in GUIDES:
        for i, block in enumerate(guide_blocks(guide, "yaml")):
            if set(yaml.safe_load(block)) <= kind:
                found.append((guide, i, block))
    return found


def _run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def test_every_yaml_block_is_a_lachan_or_prometheus_config() -> None:
    blocks = [(g, b) for g in GUIDES for b in guide_blocks(g, "yaml")]
    assert len(blocks) >= 6
    for guide, block in blocks:
        keys = set(yaml.safe_load(block))
        assert keys <= LACHAN_KEYS or keys <= PROMETHEUS_KEYS, (guide, keys)


@pytest.mark.parametrize(
    ("guide", "index", "block"),
    # A config naming the audit key is checked where the guide has made the key, by
    # test_guides_run.py (which runs the guide's commands in order).
    [b for b in _yaml_blocks(LACHAN_KEYS) if "audit:" not in b[2]],
    ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else None,
)
def test_lachan_config_in_the_guide_passes_check_config(
    tmp_path: Path, guide: str, index: int, block: str
) -> None:
    path = tmp_path / "lachan.yaml"
    path.write_text(_with_test_certificate(block, tmp_path), encoding="utf-8")
    result = _run(lachan_command() + ["check-config", "--files-only", str(path)])
    # The school guide promises exactly this line.
    assert result.returncode == 0 and result.stdout.strip() == f"{path}: ok", (
        f"{guide} yaml block {index}:\n{block}\n{result.stdout}{result.stderr}"
    )


def _with_test_certificate(block: str, folder: Path) -> str:
    """The guide's certbot paths replaced by a test certificate for the same names."""
    tls = (yaml.safe_load(block) or {}).get("tls")
    if not tls:
        return block
    from tls_helpers import make_pki

    name = tls["server_name"]
    pki = make_pki(folder / "pki", names=(name, "*." + name))
    return block.replace(tls["cert"], str(pki.cert)).replace(tls["key"], str(pki.key))


def test_the_second_instance_config_of_the_isp_guide_passes(tmp_path: Path) -> None:
    """lachan-b.yaml: the host config plus the clients section, on 127.0.0.1:5302."""
    host, *_ = [b for b in guide_blocks("isp-guide.md", "yaml") if b.startswith("site:")]
    (clients,) = [b for b in guide_blocks("isp-guide.md", "yaml") if "trusted_proxy" in b]
    text = host.replace('"127.0.0.1:5301"', '"127.0.0.1:5302"') + clients
    assert '"127.0.0.1:5302"' in text
    path = tmp_path / "lachan-b.yaml"
    path.write_text(text.replace(":9153", ":9154"), encoding="utf-8")
    result = _run(lachan_command() + ["check-config", "--files-only", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_dnsdist_conf_of_the_isp_guide_passes_check_config(tmp_path: Path) -> None:
    require("dnsdist")
    (conf,) = guide_blocks("isp-guide.md", "lua")
    path = tmp_path / "dnsdist.conf"
    path.write_text(conf, encoding="utf-8")
    result = _run(["dnsdist", "--check-config", "-C", str(path)])
    assert result.returncode == 0 and "OK" in result.stdout, result.stdout + result.stderr


def test_nftables_ruleset_of_the_school_guide_passes_nft_check(tmp_path: Path) -> None:
    require("nft")
    (ruleset,) = guide_blocks("school-guide.md", "nft")
    path = tmp_path / "lachan-guard.nft"
    path.write_text(ruleset, encoding="utf-8")
    result = _run(["nft", "-c", "-f", str(path)])
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        pytest.skip("platform: nft -c needs CAP_NET_ADMIN, which this container lacks")
    assert result.returncode == 0, result.stderr
    assert "dport 853" in ruleset and "dnat ip to $LACHAN4" in ruleset


def test_dnsmasq_lines_of_the_school_guide_pass_dnsmasq_test(tmp_path: Path) -> None:
    require("dnsmasq")
    (block,) = [b for b in guide_blocks("school-guide.md", "") if "dhcp-option" in b]
    path = tmp_path / "lachan.conf"
    path.write_text(block)
    result = _run(["dnsmasq", "--test", "-C", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dns-server,192.168.10.53" in block


@pytest.mark.parametrize("index", [0, 1])
def test_prometheus_configs_of_the_isp_guide_pass_promtool(tmp_path: Path, index: int) -> None:
    require("promtool")
    blocks = [b for _, _, b in _yaml_blocks(PROMETHEUS_KEYS)]
    assert len(blocks) == 2
    rules = tmp_path / "lachan-alerts.yml"
    shutil.copy(ROOT / "systemd" / "prometheus" / "lachan-alerts.yml", rules)
    path = tmp_path / "prometheus.yml"
    path.write_text(blocks[index].replace("/etc/prometheus/lachan-alerts.yml", str(rules)))
    result = _run(["promtool", "check", "config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_files_the_guides_name_exist() -> None:
    for guide in GUIDES:
        text = (DOCS / guide).read_text(encoding="utf-8")
        named = set(re.findall(r"\bsystemd/[\w./-]*\w", text)) - {"systemd/system"}
        assert named, guide
        for path in named:
            assert (ROOT / path).exists(), f"{guide} names {path}, which does not exist"
        for link in re.findall(r"\]\(([\w.-]+\.md)\)", text):
            assert (DOCS / link).exists(), f"{guide} links {link}"


def test_lachan_commands_the_guides_use_exist() -> None:
    used: set[tuple[str, ...]] = set()
    for guide in GUIDES:
        for match in re.finditer(r"`lachan ([a-z-]+)(?: ([a-z-]+))?", (DOCS / guide).read_text()):
            used.add(tuple(w for w in match.groups() if w))
    assert ("check-config",) in used and ("lists", "stats") in used
    for words in sorted(used):
        result = _run(lachan_command() + list(words) + ["--help"])
        if result.returncode != 0 and len(words) == 2:  # "lachan check-config FILE"-style
            result = _run(lachan_command() + [words[0], "--help"])
        assert result.returncode == 0, f"lachan {' '.join(words)}: {result.stderr}"
