"""Benchmark inputs: one blocklist in every peer's format, and the dnsperf query files."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "data"  # the workplace data folder, used when present
SHARED_LIST = SHARED / "shadowwhisperer" / "adult.txt"
SHARED_TOPSITES = SHARED / "toplists" / "umbrella-top-100k.txt"
BUNDLED_LIST = HERE.parent / "blocklists" / "bundled" / "shadowwhisperer-adult.txt"  # same list
SYNTHETIC_SIZE = 219_522  # same size as the real list, so figures stay comparable
VALID = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))+$")
ALNUM = string.ascii_lowercase + string.digits
TLDS = ("com", "net", "org", "io", "de", "info", "co.uk", "fr", "nl", "xyz", "ru", "jp")
FORMAT_VERSION = 4  # bump when a generated file changes shape, to rebuild cached data


@dataclass(frozen=True)
class Inputs:
    """Paths of the generated files plus a description of where they came from."""

    folder: Path
    meta: dict

    def path(self, name: str) -> Path:
        return self.folder / name

    def listed(self) -> list[str]:
        return self.path("blocklist.txt").read_text().split()


def rand_label(rnd: random.Random, lo: int, hi: int) -> str:
    return "".join(rnd.choices(ALNUM, k=rnd.randint(lo, hi)))


def read_domains(path: Path) -> tuple[list[str], int]:
    """Normalised, de-duplicated, sorted names from a plain or hosts-style list; and rejects."""
    names, rejected = set(), 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split()[-1].lower().rstrip(".")  # hosts lines: the name is last
        if VALID.match(name) and not name.replace(".", "").isdigit():
            names.add(name)
        else:
            rejected += 1
    return sorted(names), rejected


def synthetic_domains(n: int, seed: int = 7) -> list[str]:
    """n plausible, unique, sorted names for machines without the real list."""
    rnd, out = random.Random(seed), set[str]()
    while len(out) < n:
        name = f"{rand_label(rnd, 4, 14)}.{rnd.choice(TLDS)}"
        out.add(f"{rand_label(rnd, 2, 6)}.{name}" if rnd.random() < 0.2 else name)
    return sorted(out)


def _write(path: Path, lines: Iterable[str]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w") as f:
        f.writelines(lines)
    tmp.replace(path)


def write_peer_formats(folder: Path, prefix: str, names: list[str]) -> None:
    """The same list as plain names, unbound local-zones, hosts and an RPZ zone."""
    _write(folder / f"{prefix}.txt", (f"{d}\n" for d in names))
    # always_nxdomain: the name and everything below it, like lachan and RPZ wildcards.
    _write(
        folder / f"{prefix}.unbound.conf", (f'local-zone: "{d}." always_nxdomain\n' for d in names)
    )
    # Pi-hole v4 gravity.list style: exact names only, answered 0.0.0.0 / ::.
    _write(folder / f"{prefix}.hosts", (f"0.0.0.0 {d}\n:: {d}\n" for d in names))
    head = [
        "$TTL 300\n",
        "@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 300\n",
        "@ IN NS localhost.\n",
    ]
    body = (f"{d} CNAME .\n*.{d} CNAME .\n" for d in names)  # CNAME . = NXDOMAIN action
    _write(folder / f"{prefix}.rpz", itertools.chain(head, body))


def _suffix_check(listed: list[str]):
    bset = set(listed)

    def is_listed(name: str) -> bool:
        labels = name.split(".")
        return any(".".join(labels[i:]) in bset for i in range(len(labels)))

    return is_listed


def _topsites(is_listed, path: Path | None) -> tuple[list[str], str]:
    """A popularity-ranked list of unlisted names: the real toplist when given."""
    if path is not None:
        ranked = (n.strip().lower().rstrip(".") for n in path.read_text().split())
        top = [n for n in dict.fromkeys(ranked) if VALID.match(n) and not is_listed(n)]
        return top, f"Umbrella top-100k ({len(top):,} unlisted names)"
    top = [n for n in synthetic_domains(100_000, seed=11) if not is_listed(n)]
    return top, f"SYNTHETIC ranking of {len(top):,} names (no top-sites list found)"


def _zipf_picks(items: list[str], k: int, rnd: random.Random) -> list[str]:
    cum = list(itertools.accumulate(1.0 / r for r in range(1, len(items) + 1)))
    return rnd.choices(items, cum_weights=cum, k=k)


def _miss_names(r: int, n: int, is_listed) -> Iterable[str]:
    """n unique random unlisted names for round r; the 'r<N>' label keeps rounds disjoint."""
    rr = random.Random(1000 + r)
    names = (
        f"{rand_label(rr, 8, 16)}.r{r}{rand_label(rr, 3, 6)}.{rr.choice(TLDS)}"
        for _ in itertools.count()
    )
    return dict.fromkeys(itertools.islice((m for m in names if not is_listed(m)), n))


def _blocked_names(listed: list[str], n: int) -> Iterable[str]:
    """Alternately a listed name and a random subdomain of one."""
    rnd = random.Random(3)
    picks = rnd.choices(listed, k=n)
    return (d if i % 2 else f"{rand_label(rnd, 3, 10)}.{d}" for i, d in enumerate(picks))


def _mixed_queries(listed: list[str], top: list[str], n: int) -> Iterable[str]:
    """90% popular unlisted names, 10% popular listed ones, both Zipf(1); a quarter AAAA."""
    rnd = random.Random(4)
    n_block = n // 10
    listed_sample = rnd.sample(listed, min(20_000, len(listed)))
    mixed = _zipf_picks(top, n - n_block, rnd) + _zipf_picks(listed_sample, n_block, rnd)
    rnd.shuffle(mixed)
    return (f"{m} {'AAAA' if rnd.random() < 0.25 else 'A'}" for m in mixed)


def write_workloads(
    folder: Path,
    listed: list[str],
    sizes: dict[str, int],
    rounds: int,
    topsites: Path | None = None,
) -> dict:
    """hit, miss-rN, blocked and mixed query files ('name TYPE' per line); returns descriptions."""
    is_listed, rnd = _suffix_check(listed), random.Random(1)
    hit = [f"www.{rand_label(rnd, 5, 10)}.{rnd.choice(TLDS)}" for _ in range(1000)]
    _write(folder / "wl-hit.txt", (f"{n} A\n" for n in hit if not is_listed(n)))
    for r in range(1, rounds + 1):
        miss = _miss_names(r, sizes["miss"], is_listed)
        _write(folder / f"wl-miss-r{r}.txt", (f"{n} A\n" for n in miss))
        paced = _miss_names(100 + r, sizes["miss_paced"], is_listed)  # disjoint from every r
        _write(folder / f"wl-miss-paced-r{r}.txt", (f"{n} A\n" for n in paced))
    blocked = _blocked_names(listed, sizes["blocked"])
    _write(folder / "wl-blocked.txt", (f"{n} A\n" for n in blocked))
    top, src = _topsites(is_listed, topsites)
    _write(folder / "wl-mixed.txt", (f"{q}\n" for q in _mixed_queries(listed, top, sizes["mixed"])))
    return {
        "hit": "1,000 distinct unlisted names, type A, repeated (after one warm-up pass)",
        "miss": f"{sizes['miss']:,} unique random unlisted names per round (a new file each round), type A",
        "miss-paced": f"{sizes['miss_paced']:,} more unique names per round, sent at a fixed rate",
        "hit-paced": "the hit names, sent at a fixed rate after the hit case",
        "blocked": f"{sizes['blocked']:,} queries: half a listed name, half a random subdomain of one; type A",
        "mixed": f"{sizes['mixed']:,} queries: 90% Zipf(1) over {src}, 10% Zipf over 20k listed names; "
        "75% A / 25% AAAA",
    }


def _source(blocklist: Path | None, synthetic: bool) -> tuple[list[str], dict]:
    """The list to load: given, else shared/data, else the repository's bundled copy, else synthetic."""
    if blocklist is None and not synthetic:
        blocklist = next((p for p in (SHARED_LIST, BUNDLED_LIST) if p.is_file()), None)
    if blocklist is None:
        names = synthetic_domains(SYNTHETIC_SIZE)
        return names, {"source": f"SYNTHETIC ({len(names):,} names)", "rejected": 0}
    names, rejected = read_domains(blocklist)
    shown = blocklist.name
    for root, label in ((SHARED, "shared/data"), (HERE.parent, ".")):
        if blocklist.resolve().is_relative_to(root):
            shown = f"{label}/{blocklist.resolve().relative_to(root)}"
            break
    return names, {"source": f"{shown} ({len(names):,} names)", "rejected": rejected}


def prepare(
    folder: Path,
    sizes: dict[str, int],
    rounds: int,
    blocklist: Path | None = None,
    synthetic: bool = False,
    log=print,
) -> Inputs:
    """Build (or reuse, when nothing changed) every input file under folder."""
    folder.mkdir(parents=True, exist_ok=True)
    names, meta = _source(blocklist, synthetic)
    digest = hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]
    top = SHARED_TOPSITES if SHARED_TOPSITES.is_file() and not synthetic else None
    key = {"list": digest, "top": bool(top), "sizes": sizes, "rounds": rounds, "v": FORMAT_VERSION}
    meta_path = folder / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("key") == key:
            log("inputs up to date")
            return Inputs(folder, old)
    log(f"building inputs from {meta['source']}")
    write_peer_formats(folder, "blocklist", names)
    write_peer_formats(folder, "empty", [])
    meta.update(
        key=key,
        count=len(names),
        sha256_16=digest,
        workloads=write_workloads(folder, names, sizes, rounds, top),
    )
    meta_path.write_text(json.dumps(meta, indent=1))
    return Inputs(folder, meta)
