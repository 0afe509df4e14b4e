"""How the benchmark runs lachan: its config, catalogue and profile, and what its CLI supports."""

from __future__ import annotations

import compileall
import importlib.util
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class LachanCaps:
    """What this checkout's `lachan serve` supports (the CLI and config are still growing)."""

    lists: bool = True
    workers: bool = True
    options: frozenset[str] = frozenset()
    problem: str = ""


def lachan_command() -> list[str]:
    """The venv's console script when installed, else ``python -m resolver.cli``."""
    beside = Path(sys.executable).parent / "lachan"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "resolver.cli"]


def lachan_package() -> Path | None:
    """Where the `resolver` package this interpreter (the venv's) imports lives."""
    spec = importlib.util.find_spec("resolver")
    locations = spec.submodule_search_locations if spec is not None else None
    return Path(next(iter(locations))) if locations else None


def byte_compile(package: Path | None) -> bool:
    """Write the package's bytecode, as the Debian package's postinst does (py3compile).

    A start then reads .pyc files, as every installed lachan does. A checkout run under
    PYTHONDONTWRITEBYTECODE (set on this project's shared machines) never gets them, and
    each start compiled ~90 modules from source: ~60 ms of *ready* that no install pays.
    """
    return package is not None and compileall.compile_dir(package, quiet=1)


def _catalogue(d: Path, listfile: Path) -> Path:
    """One category, adult, fed by one domains-format file: the peers' list, nothing else."""
    source = {"id": "bench", "format": "domains", "bundled": str(listfile), "licence": "Unlicense"}
    category = {"id": "adult", "name_vi": "Nội dung người lớn", "name_en": "Adult content",
                "description": "benchmark list", "default": True, "sources": [source]}  # fmt: skip
    path = d / "catalogue.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "categories": [category]}, allow_unicode=True))
    return path


def _profile(d: Path, kind: str = "bench") -> Path:
    """A profile that blocks the list and nothing else: no safe search, keywords or canaries;
    or, for kind "under16", the shipped under16 profile whole, renamed to bench."""
    folder = d / "policies"
    folder.mkdir(exist_ok=True)
    if kind == "under16":
        profile_text = (REPO / "policies" / "under16.yaml").read_text(encoding="utf-8")
        profile_text = re.sub(r"(?m)^name: .*$", "name: bench", profile_text)
        (folder / "bench.yaml").write_text(profile_text, encoding="utf-8")
        return folder
    profile = {
        "name": "bench",
        "block": ["adult"],
        "anti_bypass": {
            "firefox_canary": False,
            "icloud_private_relay": False,
            "designated_resolver": False,
        },  # fmt: skip
        "block_answer": {"mode": "nxdomain", "ttl": 300},
    }
    (folder / "bench.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def lachan_config(
    d: Path,
    listfile: Path,
    port: int,
    upstream_port: int,
    workers: int,
    caps: LachanCaps,
    profile: str = "bench",
) -> Path:
    """Write lachan.yaml (plus catalogue and profile when lists are supported) under d."""
    d.mkdir(parents=True, exist_ok=True)
    conf: dict = {
        "listen": [f"127.0.0.1:{port}"],
        "upstreams": [{"address": "127.0.0.1", "port": upstream_port}],
    }
    if caps.lists:
        conf["lists"] = {"catalogue": str(_catalogue(d, listfile)), "state_dir": str(d / "state")}
        conf["policies"] = {"dir": str(_profile(d, profile))}
        conf["clients"] = {"default": "bench"}
    if caps.workers and "--workers" not in caps.options:
        conf["workers"] = workers
    path = d / "lachan.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False))
    return path


def _check(scratch: Path, listfile: Path, caps: LachanCaps) -> str:
    """'' when `lachan check-config` accepts the config these caps produce, else its complaint."""
    conf = lachan_config(scratch, listfile, 5399, 5300, 2, caps)
    out = subprocess.run(
        [*lachan_command(), "check-config", str(conf)], capture_output=True, text=True, timeout=60
    )
    return "" if out.returncode == 0 else (out.stderr or out.stdout).strip().replace("\n", "; ")


def lachan_caps(scratch: Path, listfile: Path) -> LachanCaps:
    """Probe `serve --help` and `check-config` for list and worker support."""
    try:
        helptext = subprocess.run(
            [*lachan_command(), "serve", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
        options = frozenset(re.findall(r"--[a-z][a-z-]+", helptext))
        no_lists = _check(scratch / "caps-lists", listfile, LachanCaps(True, False, options))
        no_workers = _check(scratch / "caps-workers", listfile, LachanCaps(False, True, options))
    except (OSError, subprocess.SubprocessError) as exc:
        return LachanCaps(False, False, frozenset(), f"cannot run lachan: {exc}")
    return LachanCaps(
        not no_lists, not no_workers, options, f"{no_lists} {no_workers}".strip()[:400]
    )


def lachan_argv(
    port: int,
    workers: int,
    d: Path,
    listfile: Path,
    up: int,
    template: str | None,
    caps: LachanCaps,
    profile: str = "bench",
) -> list[str]:
    """`lachan serve` on port with the bench config (or a stand-in command from --lachan-cmd)."""
    conf = lachan_config(d, listfile, port, up, workers, caps, profile)
    if template:  # a stand-in, e.g. to test the harness while `lachan serve` is being written
        fields = {"port": port, "upstream_port": up, "config": conf, "blocklist": listfile,
                  "workers": workers, "python": sys.executable, "bench": HERE}  # fmt: skip
        return shlex.split(template.format(**fields))
    argv = [*lachan_command(), "serve", "--listen", f"127.0.0.1:{port}",
            "--upstream", f"127.0.0.1:{up}", "--config", str(conf)]  # fmt: skip
    if "--log-level" in caps.options:  # the hot path should not pay for info logging
        argv += ["--log-level", "warning"]
    if "--workers" in caps.options:
        argv += ["--workers", str(workers)]
    return argv
