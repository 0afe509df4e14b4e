"""`lachan backup`/`restore`: a config's file, audit keys, ledger and local overrides in a tar.gz.

The archive holds ``lachan-backup.json`` (what each member is and the absolute path it came
from) and the members themselves; restore writes them back to those paths only. The audit key
is in it, so the archive is written 0600: whoever holds it can sign ledger records as the site.
"""

from __future__ import annotations

import grp
import io
import json
import os
import pwd
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .audit.keys import PUBLIC_NAME
from .config import Config
from .errors import LachanError

MANIFEST = "lachan-backup.json"
FORMAT = 1


class BackupError(LachanError):
    """A backup cannot be written or restored; the message names the file."""


@dataclass(frozen=True, slots=True)
class Item:
    """One thing a config names: its role (config, audit-key, ...) and absolute path."""

    role: str
    path: Path


def backup_items(config_path: Path, config: Config) -> list[Item]:
    """Everything ``config`` names that a site cannot download again, in a stable order."""
    named = [Item("config", config_path)]
    if config.audit.key is not None:
        named += [Item("audit-key", config.audit.key)]
        named += [Item("audit-public-key", config.audit.key.with_name(PUBLIC_NAME))]
    if config.audit.ledger is not None:
        named += [Item("ledger", config.audit.ledger)]
    if config.policies_dir is not None:
        named += [Item("policies", config.policies_dir)]
    if config.lists.catalogue is not None:
        named += [Item("catalogue", config.lists.catalogue)]
    local = _local_dir(config_path, config)
    if local is not None:
        named += [Item("policies-local", local)]
    seen: set[Path] = set()
    items = []
    for item in named:
        path = Path(os.path.abspath(item.path))
        if path not in seen:
            seen.add(path)
            items.append(Item(item.role, path))
    return items


def _local_dir(config_path: Path, config: Config) -> Path | None:
    """``policies.local_dir`` (local profile overrides), relative to the config's folder."""
    policies = config.raw.get("policies")
    value = policies.get("local_dir") if isinstance(policies, dict) else None
    return config_path.parent / value if isinstance(value, str) and value else None


def write_backup(
    out: Path, items: list[Item], clock: Callable[[], float] = time.time
) -> list[Item]:
    """Write the archive (0600, replaced atomically); the items that existed and went in."""
    present = [item for item in items if item.path.exists()]
    members = [f"{n:02d}-{item.role}" for n, item in enumerate(present)]
    created = int(clock())
    entries = [
        {"role": i.role, "path": str(i.path), "member": m}
        for i, m in zip(present, members, strict=True)
    ]
    data = json.dumps({"format": FORMAT, "created": created, "items": entries}, indent=1).encode()
    partial = out.with_name(f".{out.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), created, 0o600
            tar.addfile(info, io.BytesIO(data))
            for item, member in zip(present, members, strict=True):
                tar.add(item.path, arcname=member)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"{out}: cannot write the backup: {exc.strerror or exc}") from None
    return present


def restore_backup(archive: Path, force: bool = False) -> list[Item]:
    """Put every member back where it came from; refuse to overwrite unless ``force``."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            entries = _manifest(tar, archive)
            clashes = [str(item.path) for item, _ in entries if item.path.exists()]
            if clashes and not force:
                raise BackupError(f"{archive}: would overwrite {', '.join(clashes)} "
                                  "(pass --force to replace them)")  # fmt: skip
            for item, member in entries:
                _extract(tar, member, item.path, archive)
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise BackupError(f"{archive}: cannot restore: {exc}") from None
    return [item for item, _ in entries]


def _manifest(tar: tarfile.TarFile, archive: Path) -> list[tuple[Item, str]]:
    """The manifest's (item, member) pairs; BackupError when it is missing or malformed."""
    try:
        stream = tar.extractfile(MANIFEST)
        document = json.loads(stream.read() if stream else b"")
        entries = [(Item(e["role"], Path(e["path"])), e["member"]) for e in document["items"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{archive}: not a lachan backup ({MANIFEST}: {exc})") from None
    if document.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {document.get('format')!r}, expected {FORMAT}")
    for item, member in entries:
        if not item.path.is_absolute() or "/" in member or member in ("", ".", ".."):
            raise BackupError(f"{archive}: {MANIFEST}: bad entry {item.path} / {member!r}")
    return entries


def _extract(tar: tarfile.TarFile, member: str, target: Path, archive: Path) -> None:
    """Write one member (a file, or a folder with what is under it) to ``target``."""
    for info in tar.getmembers():
        rel = PurePosixPath(info.name).relative_to(member) if _under(info.name, member) else None
        if rel is None:
            continue
        if ".." in rel.parts:
            raise BackupError(f"{archive}: member {info.name!r} leaves its folder")
        dest = target.joinpath(*rel.parts)
        if info.isdir():
            dest.mkdir(parents=True, exist_ok=True)
        elif info.isfile():
            dest.parent.mkdir(parents=True, exist_ok=True)
            _write_file(tar, info, dest)
        else:
            raise BackupError(f"{archive}: member {info.name!r} is not a file or folder")
        os.chmod(dest, info.mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(dest, _owner(info.uname, info.uid), _group(info.gname, info.gid))


def _under(name: str, member: str) -> bool:
    return name == member or name.startswith(member + "/")


def _write_file(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: Path) -> None:
    """Replace ``dest`` atomically: a crash mid-restore never leaves half a key or ledger."""
    source = tar.extractfile(info)
    assert source is not None  # isfile() members always have data
    partial = dest.with_name(f".{dest.name}.restore")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, dest)


def _owner(name: str, number: int) -> int:
    """The archived owner by name (uids differ between machines), else by number."""
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return number


def _group(name: str, number: int) -> int:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return number
