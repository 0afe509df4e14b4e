"""Where subscriber profiles and bindings live: the interface, and the single-host file store.

``open_store("file:/path.json")`` or ``open_store("redis://host:port/db")``. Every method is
blocking (call it from a thread or the CLI); ``follow`` is the change feed a watcher thread
turns into replica updates: it yields None for "reload everything" or a list of updates.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import StoreUnavailable
from .replica import Binding, Update, canonical_prefix

POLL_SECONDS = 0.2  # the file store's change check: well inside the 1 s propagation target


class SubscriberStore(Protocol):
    """What the CLI, the RADIUS listener and the watcher need from a store."""

    loaded_version: object  # the version the last load() read (None: unknown)

    def load(self) -> tuple[dict[str, str], dict[str, Binding]]: ...
    def version(self) -> object: ...
    def set_profiles(self, profiles: Mapping[str, str | None]) -> None: ...
    def profile(self, subscriber: str) -> str | None: ...
    def bind(self, prefixes: list[str], binding: Binding) -> None: ...
    def unbind(self, prefixes: list[str]) -> None: ...
    def change(self, changes: list[tuple[str, Binding | None]]) -> None: ...
    def unbind_nas(self, nas: str) -> int: ...
    def follow(self, stop: threading.Event) -> Iterator[list[Update] | None]: ...
    def close(self) -> None: ...


def open_store(url: str) -> SubscriberStore:
    """The store a ``subscribers.store`` URL names (redis is imported only when used)."""
    if url.startswith("file:"):
        return FileStore(Path(url[5:]))
    from .redis_store import RedisStore

    return RedisStore(url)


class FileStore:
    """One JSON file, rewritten whole under a lock: for one host and small subscriber counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.loaded_version: object = None

    def version(self) -> object:
        return self._stamp()

    def load(self) -> tuple[dict[str, str], dict[str, Binding]]:
        self.loaded_version = self._stamp()  # before reading: a later change reads as newer
        document = self._read()
        bindings = {k: Binding(*v) for k, v in document.get("bindings", {}).items()}
        return dict(document.get("subscribers", {})), bindings

    def profile(self, subscriber: str) -> str | None:
        return self._read().get("subscribers", {}).get(subscriber)

    def set_profiles(self, profiles: Mapping[str, str | None]) -> None:
        with self._edit() as document:
            table = document.setdefault("subscribers", {})
            for subscriber, name in profiles.items():
                if name is None:
                    table.pop(subscriber, None)
                else:
                    table[subscriber] = name

    def bind(self, prefixes: list[str], binding: Binding) -> None:
        self.change([(prefix, binding) for prefix in prefixes])

    def unbind(self, prefixes: list[str]) -> None:
        self.change([(prefix, None) for prefix in prefixes])

    def change(self, changes: list[tuple[str, Binding | None]]) -> None:
        """Bind (or, with None, unbind) each prefix, in order, in one write."""
        with self._edit() as document:
            table = document.setdefault("bindings", {})
            for prefix, binding in changes:
                if binding is None:
                    table.pop(canonical_prefix(prefix), None)
                else:
                    table[canonical_prefix(prefix)] = list(binding)

    def unbind_nas(self, nas: str) -> int:
        with self._edit() as document:
            table = document.setdefault("bindings", {})
            gone = [k for k, v in table.items() if v[2] == nas]
            for key in gone:
                del table[key]
        return len(gone)

    def follow(self, stop: threading.Event) -> Iterator[list[Update] | None]:
        """None at once and whenever the file changes (a rename by a writer counts too)."""
        seen: Any = object()
        while not stop.is_set():
            stamp = self._stamp()
            if stamp != seen:
                seen = stamp
                yield None
            stop.wait(POLL_SECONDS)

    def close(self) -> None:
        pass

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"{self.path}: {exc.strerror}") from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreUnavailable(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise StoreUnavailable(f"{self.path}: not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise StoreUnavailable(f"{self.path}: expected a JSON object")
        return document

    @contextmanager
    def _edit(self) -> Iterator[dict[str, Any]]:
        """Read, change and atomically replace the file, one writer at a time."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = open(self.path.with_name(self.path.name + ".lock"), "a")  # noqa: SIM115
        except OSError as exc:
            raise StoreUnavailable(f"{self.path}: {exc.strerror}") from None
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            document = self._read()
            yield document
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self.path)
