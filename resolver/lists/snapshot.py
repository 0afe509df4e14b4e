"""Turn a catalogue plus the state directory into a compiled index, recompiling only on change.

State directory layout (``$LACHAN_STATE_DIR``, ``~/.cache/lachan`` or ``/var/lib/lachan``)::

    sources/<source-id>.list   last good download (fetch.py); wins over the bundled copy
    sources/<source-id>.json   download metadata: ETag, Last-Modified, last success, counts
    index/<key>.lidx           compiled index; <key> digests the catalogue and every input
    index/current              name of the newest index file
    inputs.json                each input file's SHA-256 with the stat it was taken at
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resolver.errors import IndexError_, ListError
from resolver.lists.catalogue import Catalogue, Source
from resolver.lists.index import FORMAT_VERSION, Index, open_index
from resolver.lists.match import ListAction
from resolver.lists.names import lines as _lines
from resolver.lists.rules import ParseResult

if TYPE_CHECKING:
    from resolver.lists.build import SourceInput

# The parsers and the compiler are imported where they run: a server whose index is already
# compiled (every start but the first) only maps it, and starts faster without them.

log = logging.getLogger(__name__)

# Bump when parsing or compile semantics change, so old cached indexes are not reused.
COMPILER_VERSION = 2  # 2: never-block categories do not fold down
KEEP_INDEXES = 2  # the current one and the previous one, which a worker may still map


def downloaded_path(state_dir: Path, source_id: str) -> Path:
    """Where fetch.py keeps the last good copy of a URL source."""
    return Path(state_dir) / "sources" / f"{source_id}.list"


def meta_path(state_dir: Path, source_id: str) -> Path:
    """Where a source's download metadata lives."""
    return Path(state_dir) / "sources" / f"{source_id}.json"


def read_meta(state_dir: Path, source_id: str) -> dict[str, Any]:
    """A source's metadata (empty when it was never fetched or the file is unreadable).

    Here, not in fetch.py, because the server reads it at start (list freshness metrics)
    and fetch.py imports requests: ~40 ms of every start for one small JSON file.
    """
    try:
        data = json.loads(meta_path(state_dir, source_id).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def source_file(source: Source, state_dir: Path) -> Path | None:
    """The file a source compiles from: last good download, else bundled copy, else None."""
    fetched = downloaded_path(state_dir, source.id)
    if fetched.exists():
        return fetched
    if source.bundled is not None and source.bundled.exists():
        return source.bundled
    return None


def _digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


INPUTS_MEMO = "inputs.json"
RACY_SECONDS = 2.0  # a file changed this recently may change again within one timestamp tick


def input_digests(
    catalogue: Catalogue, state_dir: Path, *, clock: Callable[[], float] = time.time
) -> dict[str, str]:
    """SHA-256 of every source's current input file, by source id ('' when it has none).

    They name the index, so every start needs them; hashing every input took ~10 ms for the
    bundled lists (15 MB), and grows with them. A digest is kept in inputs.json with
    its file's inode, size, mtime and ctime and reused while all four are the same: writing,
    renaming over or touching a file changes its ctime, which no tool sets back. A file
    changed in the last RACY_SECONDS is hashed and not kept: timestamps are coarse, and a
    second write within the same tick could leave all four unchanged (git's "racy" case).
    """
    memo_path = Path(state_dir) / INPUTS_MEMO  # not in index/: its listing is the indexes
    memo = _read_memo(memo_path)
    out: dict[str, str] = {}
    kept: dict[str, list[Any]] = {}
    for src in catalogue.sources:
        path = source_file(src, state_dir)
        if path is None:
            out[src.id] = ""
            continue
        stat = path.stat()  # before reading: a change while hashing shows at the next start
        stamp = [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]
        known = memo.get(str(path))
        if isinstance(known, list) and len(known) == 2 and known[0] == stamp:
            digest = str(known[1])
        else:
            digest = _digest(path)
        out[src.id] = digest
        if stat.st_ctime_ns < (clock() - RACY_SECONDS) * 1e9:
            kept[str(path)] = [stamp, digest]
    if kept != memo:
        _write_memo(memo_path, kept)
    return out


def _read_memo(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_memo(path: Path, memo: dict[str, list[Any]]) -> None:
    """Best effort: a state folder this user cannot write only costs the next start time."""
    from resolver.lists.build import atomic_write

    try:
        atomic_write(path, json.dumps(memo, indent=0, sort_keys=True).encode())
    except (ListError, OSError) as exc:  # OSError: the state folder cannot be made
        log.debug("input digests not kept: %s", exc)


def index_key(catalogue: Catalogue, digests: dict[str, str]) -> str:
    """A short stable digest naming the index these inputs compile to."""
    h = hashlib.sha256(f"{FORMAT_VERSION}:{COMPILER_VERSION}:{catalogue.digest}".encode())
    for sid in sorted(digests):
        h.update(f"\n{sid}={digests[sid]}".encode())
    return h.hexdigest()[:20]


def parse_source(
    source: Source, path: Path, protected: frozenset[str] = frozenset()
) -> ParseResult:
    """Parse one source file (invalid UTF-8 is replaced, then rejected as a bad name).

    A guarded source loses entries naming a protected platform host exactly; each is
    reported like any other rejected line."""
    text = read_text(path)
    from resolver.lists.parsers import parse

    result = parse(text, source.format)
    if source.guarded and protected:
        kept = [r for r in result.rules if r.name not in protected or r.action is ListAction.ALLOW]
        if len(kept) != len(result.rules):
            _report_protected(result, text, protected)
            result.rules = kept
    return result


def read_text(path: Path) -> str:
    """A list file's text; ``.gz`` files (large bundled lists, to keep the repository small)
    are decompressed. Invalid UTF-8 is replaced, then rejected as a bad name by the parser."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ListError(f"{path}: not a readable gzip file: {exc}") from None
    return raw.decode("utf-8", errors="replace")


def _report_protected(result: ParseResult, text: str, protected: frozenset[str]) -> None:
    for no, line in enumerate(_lines(text), 1):
        words = line.replace("|", " ").replace("^", " ").split()
        hit = next(
            (w.lower().rstrip(".") for w in words if w.lower().rstrip(".") in protected), None
        )
        if hit is not None and not line.lstrip().startswith(("#", "!", ";", "@@")):
            result.reject(no, line, f"protected platform host {hit!r} not blocked by exact name")


def read_source(
    source: Source, path: Path, digest: str = "", protected: frozenset[str] = frozenset()
) -> SourceInput:
    """Parse one source file into compiler input."""
    result = parse_source(source, path, protected)
    from resolver.lists.build import SourceInput

    return SourceInput(
        source.id,
        source.category,
        result.rules,
        digest=digest,
        rejected=len(result.problems),
        extra={"file": str(path), "format": source.format},
    )


def compile_index(
    catalogue: Catalogue,
    state_dir: Path,
    *,
    digests: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Path:
    """Parse every available source and write a new index; return its path."""
    state_dir = Path(state_dir)
    digests = digests if digests is not None else input_digests(catalogue, state_dir)
    key = index_key(catalogue, digests)
    inputs = []
    for src in catalogue.sources:
        path = source_file(src, state_dir)
        if path is not None:
            inputs.append(read_source(src, path, digests.get(src.id, ""), catalogue.protected))
    if not inputs:
        raise ListError(f"{catalogue.path}: no source has a bundled or downloaded file")
    out = state_dir / "index" / f"{key}.lidx"
    try:  # explain, allow and lists compile reach here without check-config's folder check
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ListError(f"lists.state_dir: cannot create {out.parent}: {exc.strerror}") from None
    from resolver.lists.build import atomic_write, build_index

    build_index(
        inputs, catalogue.category_ids, out, key=key, clock=clock, never_block=catalogue.never_block
    )
    atomic_write(state_dir / "index" / "current", out.name.encode())
    _prune(out.parent, keep=out)
    return out


def ensure_index(
    catalogue: Catalogue, state_dir: Path, *, clock: Callable[[], float] = time.time
) -> Path:
    """Path of an index for the current inputs, compiling only if none exists (or it is bad)."""
    return open_current(catalogue, state_dir, clock=clock, memo_size=0).info.path


def open_current(
    catalogue: Catalogue,
    state_dir: Path,
    *,
    clock: Callable[[], float] = time.time,
    memo_size: int = 4096,
) -> Index:
    """The index for the current inputs, compiled first if none exists (or it is bad).

    Opened once: opening checks the whole file's SHA-256 (~10 ms for the bundled lists),
    which a server's start paid twice when it took ensure_index's path and opened it again.
    """
    state_dir = Path(state_dir)
    digests = input_digests(catalogue, state_dir, clock=clock)
    path = state_dir / "index" / f"{index_key(catalogue, digests)}.lidx"
    if path.exists():
        try:
            return open_index(path, memo_size=memo_size)
        except IndexError_ as exc:
            log.warning("recompiling: %s", exc)
    built = compile_index(catalogue, state_dir, digests=digests, clock=clock)
    return open_index(built, memo_size=memo_size)


def current_index(state_dir: Path) -> Path | None:
    """The newest compiled index recorded in the state directory, if any."""
    pointer = Path(state_dir) / "index" / "current"
    try:
        path = pointer.parent / pointer.read_text().strip()
    except OSError:
        return None
    return path if path.exists() else None


def _prune(folder: Path, keep: Path) -> None:
    """Remove all but the newest KEEP_INDEXES index files (a mapped file survives unlink)."""
    files = sorted(folder.glob("*.lidx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [f for f in files if f != keep][KEEP_INDEXES - 1 :]:
        old.unlink(missing_ok=True)
