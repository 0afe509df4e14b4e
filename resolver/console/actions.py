"""What staff do in the console, apart from HTTP: explain, allow for a while, allow for good.

Every function takes the serving snapshot in force, so the console decides like the server.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import yaml

from .. import yamlsafe
from ..allows import (
    NEVER_DEFAULT,
    AllowError,
    AllowStore,
    TemporaryAllow,
    normalise_site,
    parse_duration,
    without_allows,
)
from ..config import Config
from ..policy.decide import decide
from ..policy.decision import Block, Rewrite
from ..policy.explain import explain
from ..state import ServingState
from .audit_log import AuditLog
from .settings import never_categories

_TYPE_A = 1


def explain_lines(state: ServingState, profile: str, name: str, now: float) -> list[str]:
    """``lachan explain``'s lines for ``name`` as a client of ``profile`` asks it now."""
    chosen = state.profiles.get(profile)
    if chosen is None:
        raise AllowError(f"unknown profile {profile!r}")
    site = normalise_site(name)
    when = datetime.fromtimestamp(now, chosen.timezone)
    return explain(chosen, "chosen in the console", site, _TYPE_A, when, state.index)


def verdict(state: ServingState, profile: str, name: str, now: float) -> tuple[str, str]:
    """What ``name`` gets now as a client of ``profile`` asks it, in words a teacher reads:
    ("blocked", category), ("rewritten", target) or ("allowed", "")."""
    chosen = state.profiles.get(profile)
    if chosen is None:
        raise AllowError(f"unknown profile {profile!r}")
    decision = decide(chosen, normalise_site(name), _TYPE_A, now, state.index)
    if isinstance(decision, Block) and not decision.monitor_only:
        return "blocked", decision.category
    if isinstance(decision, Rewrite):
        return "rewritten", decision.target
    return "allowed", ""


def category_of(state: ServingState, profile: str, name: str, now: float) -> str:
    """The category that blocks ``name`` for ``profile`` now, temporary allows aside ("" when
    it is not blocked)."""
    decision = decide(without_allows(state.profiles[profile]), name, _TYPE_A, now, state.index)
    return decision.category if isinstance(decision, Block) else ""


def _checked(state: ServingState, profile: str, name: str, now: float,
             never: frozenset[str]) -> tuple[str, str]:  # fmt: skip
    if profile not in state.profiles:
        known = ", ".join(sorted(state.profiles))
        raise AllowError(f"unknown profile {profile!r} (known: {known})")
    site = normalise_site(name)
    category = category_of(state, profile, site, now)
    if category in never:
        raise AllowError(
            f"{site} is blocked as {category}, which can never be opened (change the profile)"
        )
    return site, category


def grant(
    store: AllowStore, audit: AuditLog, state: ServingState, form: dict[str, str], user: str,
    now: float, never: frozenset[str] = NEVER_DEFAULT,
) -> TemporaryAllow:  # fmt: skip
    """A temporary allow from the console's form (name, profile, duration, reason)."""
    site, category = _checked(state, form.get("profile", ""), form.get("name", ""), now, never)
    seconds = parse_duration(form.get("duration", ""))
    allow = store.add(site, form["profile"], seconds, form.get("reason", ""), user, category)
    audit.write(user, "allow", name=site, profile=allow.profile, until=allow.until,
                reason=allow.reason, category=category or "none")  # fmt: skip
    return allow


def revoke(store: AllowStore, audit: AuditLog, name: str, profile: str, user: str) -> int:
    gone = store.revoke(normalise_site(name), profile or None, user)
    if not gone:
        raise AllowError(f"no temporary allow for {name}")
    audit.write(user, "revoke", name=gone[0].name, profile=profile or "all")
    return len(gone)


def allow_for_good(
    config: Config, state: ServingState, audit: AuditLog, name: str, profile: str, user: str,
    now: float, reload: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGHUP),
) -> Path:  # fmt: skip
    """Add ``name`` to the profile's allow list in ``policies.local_dir``, then reload."""
    local = config.policies_local_dir
    if local is None:
        raise AllowError("permanent allows need policies.local_dir in the config")
    site, category = _checked(state, profile, name, now, never_categories(config.console))
    path = Path(local) / f"{profile}.yaml"
    data = _read_local(path)
    allow = data.setdefault("allow", [])
    if not isinstance(allow, list):
        raise AllowError(f"{path}: allow: is not a list; edit the file by hand")
    for entry in (site, f"*.{site}"):
        if entry not in allow:
            allow.append(entry)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    os.replace(tmp, path)
    audit.write(user, "allow-permanent", name=site, profile=profile, category=category or "none")
    reload()  # the supervisor (or the single process) re-reads profiles and tells workers
    return path


def _read_local(path: Path) -> dict[str, object]:
    try:
        data = yamlsafe.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise AllowError(f"{path}: cannot read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AllowError(f"{path}: not a mapping; edit the file by hand")
    return data
