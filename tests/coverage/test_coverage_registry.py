"""The site registry: valid entries load; each mistake names the file, entry and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from coverage_helpers import inline_key, site_key

from resolver.coverage.registry import load_registry, parse_address
from resolver.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "want"),
    [("10.0.0.53", ("10.0.0.53", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
     ("::1", ("::1", 53)), ("[::1]:5300", ("::1", 5300)), ("[2001:db8::5]", ("2001:db8::5", 53))],
)  # fmt: skip
def test_parse_address(text: str, want: tuple[str, int]) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["dns.example", "10.0.0.1:0", "10.0.0.1:x", "[::1]:70000"])
def test_bad_address(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)


def test_loads_and_reports_every_problem(tmp_path: Path) -> None:
    key = site_key(tmp_path, "a")
    good = tmp_path / "good.yaml"
    good.write_text(f"""sites:
  - {{id: thpt-a, name: "THPT A", kind: school, commune: Vinh, public_key: keys/a/audit.pub,
     resolver: "127.0.0.1:5353"}}
  - {{id: isp-b, kind: isp, instances: 3, public_key: "{inline_key(key)}"}}
""")
    sites = load_registry(good)
    assert [(s.id, s.kind, s.instances, s.resolver) for s in sites] == [
        ("thpt-a", "school", 1, ("127.0.0.1", 5353)), ("isp-b", "isp", 3, None)]  # fmt: skip
    assert sites[0].public_key is not None and sites[1].name == "isp-b"
    bad = tmp_path / "bad.yaml"
    bad.write_text("""sites:
  - {id: A, kind: school}
  - {id: b, kind: university}
  - {id: c, kind: isp, instances: 0}
  - {id: d, kind: isp, public_key: nowhere.pub}
  - {id: e, kind: isp, resolver: dns.example}
  - {id: f, kind: isp, colour: red}
  - {id: g, kind: isp}
  - {id: g, kind: isp}
""")
    with pytest.raises(ConfigError) as err:
        load_registry(bad)
    problems = err.value.problems
    assert [p.split(": ")[1] for p in problems] == [
        "sites[0].id", "sites[1].kind", "sites[2].instances", "sites[3].public_key",
        "sites[4].resolver", "sites[5]", "sites[7].id"]  # fmt: skip
    assert all(p.startswith(f"{bad}: ") for p in problems)


def test_not_a_registry(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("- just a list\n")
    with pytest.raises(ConfigError, match="'sites' list"):
        load_registry(bad)


def test_a_registry_that_is_not_valid_yaml_is_one_line_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_text("sites:\n  - {id: thcs-a, kind: school\n")
    with pytest.raises(ConfigError) as caught:
        load_registry(bad)
    assert caught.value.problems == [
        f"{bad}: line 3: not valid YAML: expected ',' or '}}', but got '<stream end>'"
    ]


def test_a_registry_saved_in_a_windows_code_page_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "sites.yaml"
    bad.write_bytes("sites:\n  - {id: thcs-a, kind: school, name: Thuê}\n".encode("cp1258"))
    with pytest.raises(ConfigError) as caught:
        load_registry(bad)
    assert caught.value.problems == [f"{bad}: line 2: not UTF-8 text (save the file as UTF-8)"]
