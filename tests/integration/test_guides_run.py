"""README.md and the guides, run as written (see guide_runner for the substitutions).

A school following docs/school-guide.md gets the `school` profile and a verified ledger
record; the README's quick check answers as it says; every lachan config shown anywhere
passes check-config; the Vietnamese documents carry the same commands and configs in the
same order as the English ones.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.integration.guide_runner import Block, GuideRun, blocks, is_lachan_yaml
from tests.stub_upstream import ROOT, StubUpstream, lachan_command

DOCS = ("README.md", "docs/school-guide.md", "docs/isp-guide.md", "docs/vi/README.md",
        "docs/vi/huong-dan-truong-hoc.md", "docs/vi/huong-dan-nha-mang.md")  # fmt: skip
TRANSLATIONS = {"docs/vi/huong-dan-truong-hoc.md": "docs/school-guide.md"}
# Translated one section at a time: the Vietnamese file holds the section under this heading.
SECTIONS = {"docs/vi/huong-dan-nha-mang.md": ("docs/isp-guide.md", "## Subscriber mode")}


@pytest.fixture
def stub() -> Iterator[str]:
    with StubUpstream() as upstream:
        yield upstream.address


def runnable(doc: str) -> list[Block]:
    return [b for b in blocks(ROOT / doc) if b.lang in ("sh", "yaml") and b.not_run is None]


def follow(run: GuideRun, doc: str) -> str:
    try:
        for block in runnable(doc):
            if block.lang == "sh" or is_lachan_yaml(block):
                run.run_block(block)
    finally:
        run.stop()
    return "".join(run.output)


def test_a_school_following_the_guide_gets_the_school_profile_and_a_ledger(
    tmp_path: Path, stub: str
) -> None:
    out = follow(GuideRun(tmp_path, stub, from_deb=True), "docs/school-guide.md")
    assert f"{tmp_path}/etc/lachan/lachan.yaml: ok" in out
    assert "profile:  school (" in out and "decision: block" in out  # explain
    assert '"site=thcs-le-loi"' in out and '"profile=school"' in out  # dig TXT status
    ledger = f"{tmp_path}/var/lib/lachan/ledger/ledger.jsonl"
    assert re.search(rf"{re.escape(ledger)}: OK, [1-9]\d* records, site thcs-le-loi", out), out


INSTALLING = ("README.md", "docs/school-guide.md", "docs/vi/huong-dan-truong-hoc.md",
              "docs/auditor-guide.md", "docs/vi/huong-dan-kiem-tra.md")  # fmt: skip


@pytest.mark.parametrize("doc", INSTALLING)
def test_installing_starts_with_the_debian_package(doc: str) -> None:
    """The first install shown is the .deb that tests/packaging/test_deb.py builds and installs,
    named with the version `make deb` gives it; pip comes after, as the alternative."""
    version = re.search(r"^version = (\S+)$", (ROOT / "setup.cfg").read_text(), re.M)
    assert version is not None
    installs = [b.text for b in blocks(ROOT / doc) if b.lang == "sh"
                and ("apt install ./dist/" in b.text or "pip install" in b.text)]  # fmt: skip
    assert installs and "make deb" in installs[0], installs
    assert f"apt install ./dist/lachan_{version.group(1)}_amd64.deb" in installs[0]
    assert all("apt install ./dist/" not in text for text in installs[1:])


def test_the_readme_quick_check_answers_as_it_says(tmp_path: Path, stub: str) -> None:
    run = GuideRun(tmp_path, stub)
    run.start_make_serve()
    out = follow(run, "README.md")
    assert "EDE: 17 (Filtered): (lachan: blocked category=adult profile=under16; help: 111)" in out
    assert "forcesafesearch.google.com." in out and "restrict.youtube.com." in out
    assert '"profile=under16"' in out


@pytest.mark.parametrize("doc", DOCS)
def test_every_block_is_run_or_says_why_not(doc: str) -> None:
    found = [b for b in blocks(ROOT / doc) if b.lang in ("sh", "yaml")]
    assert found, doc
    skipped = [b for b in found if b.not_run is not None]
    # Installing (the .deb, which tests/packaging runs, or pip without it) and the router; in
    # the school guide the encrypted-DNS section's two, which need a public name (tests/transport
    # runs them on loopback), and the push to the province's collector (tests/collector runs it
    # against a real one).
    assert len(skipped) <= 7, [(b.line, b.not_run) for b in skipped]
    for block in found:
        if block.lang == "yaml" and block.not_run is None:
            keys = set(yaml.safe_load(block.text))
            assert is_lachan_yaml(block) or keys <= {"global", "scrape_configs", "rule_files"}


@pytest.mark.parametrize(("translated", "original"), sorted(TRANSLATIONS.items()))
def test_the_vietnamese_guide_has_the_same_commands_and_configs(
    translated: str, original: str
) -> None:
    assert _steps(ROOT / translated) == _steps(ROOT / original)


@pytest.mark.parametrize(("translated", "original"), sorted(SECTIONS.items()))
def test_a_vietnamese_section_has_the_same_commands_configs_and_snippets(
    translated: str, original: tuple[str, str]
) -> None:
    """Untagged blocks count too (FreeRADIUS config, the portal's commands): only their
    comments may differ."""
    path, heading = original
    ours = _steps(ROOT / translated, untagged=True)
    theirs = _steps(ROOT / path, untagged=True, lines=_section(ROOT / path, heading))
    assert len(ours) >= 4 and ours == theirs


def _section(path: Path, heading: str) -> range:
    """The line numbers (1-based) from ``heading`` to the next heading of its level."""
    lines = path.read_text(encoding="utf-8").splitlines()
    level = heading.split(" ")[0] + " "
    start = next(i for i, line in enumerate(lines, 1) if line.startswith(heading))
    end = next((i for i, line in enumerate(lines, 1) if i > start and line.startswith(level)),
               len(lines) + 1)  # fmt: skip
    return range(start, end)


def test_the_vietnamese_readme_has_the_quick_start_of_the_readme() -> None:
    ours = _steps(ROOT / "docs/vi/README.md")
    assert ours and ours == _steps(ROOT / "README.md")[: len(ours)]
    assert len(ours) >= 2  # the two commands and the quick check


def _steps(
    path: Path, untagged: bool = False, lines: range | None = None
) -> list[tuple[str, object, str | None]]:
    """Each sh/yaml block's commands (comments dropped: they are translated) or parsed config,
    and whether it is run; with ``untagged``, untagged blocks' lines without comments too
    (``text`` blocks, diagrams in words, are translated whole)."""
    steps: list[tuple[str, object, str | None]] = []
    for block in blocks(path):
        if lines is not None and block.line not in lines:
            continue
        if untagged and block.lang == "":
            code = [re.sub(r"(^|\s)#.*", "", line).strip() for line in block.text.splitlines()]
            steps.append(("code", [line for line in code if line], _run_flag(block)))
        elif block.lang == "yaml":
            steps.append(("yaml", yaml.safe_load(block.text), _run_flag(block)))
        elif block.lang == "sh":
            commands = [shlex.join(shlex.split(line, comments=True)) for line in
                        block.text.replace("\\\n", " ").splitlines()]  # fmt: skip
            steps.append(("sh", [c for c in commands if c], _run_flag(block)))
    return steps


def _run_flag(block: Block) -> str | None:
    return "not-run" if block.not_run else None


def test_check_config_of_a_guide_block_really_runs(tmp_path: Path, stub: str) -> None:
    """The runner fails a bad block: a guide that drifts cannot pass by accident."""
    run = GuideRun(tmp_path, stub)
    bad = Block("yaml", "site: {timezone: Mars/Olympus}\n", 1)
    with pytest.raises(AssertionError, match="site.timezone"):
        run.run_block(bad)
    with pytest.raises(AssertionError, match="no-such-command"):
        run.run_block(Block("sh", "lachan no-such-command\n", 2))


def test_the_state_folders_the_guides_name_are_the_ones_lachan_writes(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ours.txt").write_text("x.example\n")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/ours.txt"
        (tmp_path / "catalogue.yaml").write_text(
            "categories: [{id: adult, name_vi: Người lớn, name_en: Adult, sources: ["
            f"{{id: ours, format: domains, url: '{url}', licence: local}}]}}]\n"
        )
        state = tmp_path / "state"
        result = subprocess.run(
            [*lachan_command(), "lists", "update", "--catalogue", str(tmp_path / "catalogue.yaml"),
             "--state-dir", str(state)], capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        server.shutdown()
    assert result.returncode == 0, result.stderr
    written = {p.name for p in state.iterdir() if p.is_dir()} | {"ledger"}  # ledger: audit
    assert {"sources", "index"} <= written
    for doc in DOCS:
        named = set(re.findall(r"/var/lib/lachan/([\w.-]+)/", (ROOT / doc).read_text()))
        assert named <= written, (doc, named - written)
