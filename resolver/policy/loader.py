"""Load ``policies/*.yaml`` into Profiles; every problem is one line naming the file and key."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import idna
import yaml

from resolver import yamlsafe
from resolver.config_read import unknown_key
from resolver.errors import ConfigError
from resolver.policy.decision import AnswerMode
from resolver.policy.keywords import KeywordMatcher
from resolver.policy.overrides import Docs, apply_local
from resolver.policy.profile import (
    CATEGORIES,
    DEFAULT_CANARY,
    DEFAULT_TIMEZONE,
    SECURITY_DEFAULT,
    AntiBypass,
    BlockAnswer,
    NameRules,
    Profile,
)
from resolver.policy.safesearch import ENGINE_MODES, SafeSearch
from resolver.policy.schedule import Window, parse_hhmm, parse_weekday

T = TypeVar("T")
_KEYS = frozenset(
    {
        "name", "description", "block", "censored", "security", "allow", "deny", "safe_search",
        "schedules", "timezone", "keywords", "anti_bypass", "block_answer", "monitor_only",
        "canary",
    }
)  # fmt: skip
_PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_KEYWORD = re.compile(r"^\^?[a-z0-9-]{2,63}$")  # ^word: only where a token starts


def normalise_name(text: str, wildcard: bool = False) -> str:
    """Lowercase, no trailing dot, IDN to punycode; ``*.`` only in front when ``wildcard``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a domain name, got {text!r}")
    name = text.strip().rstrip(".").lower()
    prefix = "*." if wildcard and name.startswith("*.") else ""
    body = name[len(prefix) :]
    try:
        # UTS 46 non-transitional, as the lists (resolver/lists/names.py) and browsers do:
        # IDNA 2003 would map straße.de to strasse.de, which no browser asks for.
        if not body.isascii():
            body = idna.encode(body, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        raise ValueError(f"invalid international name {text!r}") from None
    labels = body.split(".")
    if len(body) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"invalid domain name {text!r}")
    return prefix + body


class _Checker:
    """Collects one line per problem instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(f"{self.source}: {key}: {message}")

    def typed(self, data: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
        value = data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.add(key, f"expected {kind.__name__}, got {type(value).__name__}")
            return default
        return value

    def each(self, data: Mapping[str, Any], key: str, convert: Callable[[Any], T]) -> list[T]:
        """Convert every item of list ``key``; each failure is one problem at ``key[i]``."""
        items = self.typed(data, key, list, [])
        out: list[T] = []
        for i, item in enumerate(items):
            try:
                out.append(convert(item))
            except (ValueError, TypeError) as exc:
                self.add(f"{key}[{i}]", str(exc))
        return out


# Categories that were renamed or split, so an operator's old profile gets the new names.
_RENAMED = {"vpn-proxy-doh": "was split into vpn-proxy (VPN and proxy services) and doh"}


def _category(value: Any) -> str:
    if isinstance(value, str) and value in _RENAMED:
        raise ValueError(f"category {value!r} {_RENAMED[value]}: name those instead")
    if not isinstance(value, str) or value not in CATEGORIES:
        raise ValueError(f"unknown category {value!r} (known: {', '.join(sorted(CATEGORIES))})")
    return value


def _keyword(value: Any) -> str:
    if not isinstance(value, str) or not _KEYWORD.match(value.lower()):
        raise ValueError(
            f"keyword must be 2-63 letters, digits or '-' (optionally after ^), got {value!r}"
        )
    return value.lower()


def _name_rules(check: _Checker, data: Mapping[str, Any], key: str) -> NameRules:
    names = check.each(data, key, lambda v: normalise_name(v, wildcard=True))
    exact = frozenset(n for n in names if not n.startswith("*."))
    return NameRules(exact, frozenset(n[2:] for n in names if n.startswith("*.")))


def _safe_search(check: _Checker, data: Mapping[str, Any]) -> SafeSearch:
    table = check.typed(data, "safe_search", dict, {})
    modes: dict[str, str] = {}
    for engine, raw in table.items():
        # YAML 1.1 reads a bare on/off/yes/no as a boolean; take those as on/off.
        mode = {True: "on", False: "off"}.get(raw, raw) if isinstance(raw, bool) else str(raw)
        allowed = ENGINE_MODES.get(str(engine))
        if allowed is None:
            check.add(f"safe_search.{engine}", f"unknown engine (known: {', '.join(ENGINE_MODES)})")
        elif engine == "youtube" and mode == "on":
            modes[engine] = "strict"
        elif mode not in allowed:
            check.add(f"safe_search.{engine}", f"mode must be one of {', '.join(allowed)}")
        else:
            modes[engine] = mode
    return SafeSearch(modes)


def _hhmm(check: _Checker, key: str, value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        check.add(key, "write times in quotes, e.g. '21:30' (YAML reads 21:30 as a number)")
        return None
    try:
        return parse_hhmm(value)
    except ValueError as exc:
        check.add(key, str(exc))
        return None


def _window(check: _Checker, index: int, item: Any) -> Window | None:
    key = f"schedules[{index}]"
    if not isinstance(item, dict):
        check.add(key, "expected a mapping with categories, days, from, to")
        return None
    for extra in sorted(set(item) - {"categories", "days", "from", "to"}):
        check.add(f"{key}.{extra}", "unknown key")
    sub = _Checker(check.source)
    categories = sub.each(item, "categories", _category)
    days = sub.each(item, "days", parse_weekday)
    check.problems += [p.replace(": ", f": {key}.", 1) for p in sub.problems]
    start = _hhmm(check, f"{key}.from", item.get("from"))
    end = _hhmm(check, f"{key}.to", item.get("to"))
    if not categories or not days:
        check.add(key, "needs at least one category and one day")
    if start is None or end is None or sub.problems or not categories or not days:
        return None
    if start == end or start == 1440:
        check.add(key, "from must differ from to and be before 24:00")
        return None
    return Window(frozenset(days), start, end, frozenset(categories))


def _schedules(check: _Checker, data: Mapping[str, Any]) -> tuple[Window, ...]:
    items = check.typed(data, "schedules", list, [])
    windows = (_window(check, i, item) for i, item in enumerate(items))
    return tuple(w for w in windows if w is not None)


def _keywords(check: _Checker, data: Mapping[str, Any]) -> KeywordMatcher:
    section = check.typed(data, "keywords", dict, {})
    for extra in sorted(set(section) - {"block", "allow"}):
        check.add(f"keywords.{extra}", "unknown key (expected block, allow)")
    sub = _Checker(check.source)
    block, allow = sub.each(section, "block", _keyword), sub.each(section, "allow", _keyword)
    check.problems += [p.replace(": ", ": keywords.", 1) for p in sub.problems]
    return KeywordMatcher.build(block, allow)


def _timezone(check: _Checker, data: Mapping[str, Any], default: str) -> ZoneInfo:
    key = check.typed(data, "timezone", str, default)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        check.add("timezone", f"unknown time zone {key!r} (e.g. {DEFAULT_TIMEZONE})")
        return ZoneInfo(DEFAULT_TIMEZONE)


def _anti_bypass(check: _Checker, data: Mapping[str, Any]) -> AntiBypass:
    section = check.typed(data, "anti_bypass", dict, {})
    known = AntiBypass.__dataclass_fields__
    for extra in sorted(set(section) - set(known)):
        check.add(f"anti_bypass.{extra}", f"unknown switch (known: {', '.join(known)})")
    sub = _Checker(check.source)
    values = {k: sub.typed(section, k, bool, True) for k in known}
    check.problems += [p.replace(": ", ": anti_bypass.", 1) for p in sub.problems]
    return AntiBypass(**values)


def _address(check: _Checker, key: str, value: Any, version: int) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        address = None
    if address is None or address.version != version:
        check.add(key, f"expected an IPv{version} address, got {value!r}")
        return None
    return str(address)


def _answer(check: _Checker, data: Mapping[str, Any]) -> BlockAnswer:
    section = check.typed(data, "block_answer", dict, {})
    for extra in sorted(set(section) - {"mode", "ttl", "address_v4", "address_v6"}):
        check.add(f"block_answer.{extra}", "unknown key")
    modes = [m.value for m in AnswerMode if m not in (AnswerMode.DROP, AnswerMode.LOCAL)]
    mode_text = section.get("mode", "nxdomain")
    if mode_text is None and "mode" in section:
        mode_text = "null"  # YAML reads an unquoted `mode: null` as no value: the operator meant it
    if mode_text not in modes:
        check.add("block_answer.mode", f"unknown mode {mode_text!r} (known: {', '.join(modes)})")
        mode_text = "nxdomain"
    ttl = section.get("ttl", 300)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= 86400:
        check.add("block_answer.ttl", f"expected seconds from 0 to 86400, got {ttl!r}")
        ttl = 300
    v4 = _address(check, "block_answer.address_v4", section.get("address_v4"), 4)
    v6 = _address(check, "block_answer.address_v6", section.get("address_v6"), 6)
    mode = AnswerMode(mode_text)
    # blockpage without an address takes the console's (checked against the config in
    # resolver/state.py: load_policies, which knows whether a console is configured)
    return BlockAnswer(mode, ttl, v4, v6)


def _profile_name(check: _Checker, data: Mapping[str, Any], default: str) -> str:
    name = check.typed(data, "name", str, default)
    if not _PROFILE_NAME.match(name):
        check.add("name", f"profile names are lowercase letters, digits, '-', '_': {name!r}")
    return name


def _canary(check: _Checker, data: Mapping[str, Any]) -> str:
    try:
        return normalise_name(check.typed(data, "canary", str, DEFAULT_CANARY))
    except ValueError as exc:
        check.add("canary", str(exc))
        return DEFAULT_CANARY


def profile_from_mapping(
    data: Any, source: str, default_name: str, default_timezone: str = DEFAULT_TIMEZONE
) -> Profile:
    """Validate one parsed profile document; raise ConfigError listing every problem.

    ``default_timezone`` (the site's zone from the main config) applies when the profile
    names none.
    """
    check = _Checker(source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    for extra in sorted(set(data) - _KEYS):
        check.add(str(extra), unknown_key(str(extra), set(_KEYS)))
    block = frozenset(check.each(data, "block", _category))
    profile = Profile(
        name=_profile_name(check, data, default_name),
        source=source,
        block=block,
        censored=frozenset(check.each(data, "censored", _category)),
        security=frozenset(check.each(data, "security", _category) or SECURITY_DEFAULT),
        allow=_name_rules(check, data, "allow"),
        deny=_name_rules(check, data, "deny"),
        safe_search=_safe_search(check, data),
        schedules=_schedules(check, data),
        timezone=_timezone(check, data, default_timezone),
        keywords=_keywords(check, data),
        anti_bypass=_anti_bypass(check, data),
        answer=_answer(check, data),
        monitor_only=check.typed(data, "monitor_only", bool, False),
        canary=_canary(check, data),
        description=check.typed(data, "description", str, ""),
    )
    if check.problems:
        raise ConfigError(check.problems)
    return profile


def _read_yaml(path: Path, source: str) -> Any:
    try:
        return yamlsafe.load(yamlsafe.read_text(path))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        raise ConfigError(
            f"{source}: {where}: invalid YAML: {getattr(exc, 'problem', exc)}"
        ) from None
    except ValueError as exc:  # not UTF-8
        raise ConfigError(f"{source}: {exc}") from None


def _read_dir(directory: Path, problems: list[str]) -> Docs:
    """Every ``*.yaml`` document of a folder by profile name (``name``, else the file name)."""
    docs: Docs = {}
    for path in sorted(directory.glob("*.yaml")):
        label = f"{directory.name}/{path.name}"
        try:
            data = _read_yaml(path, label)
        except ConfigError as exc:
            problems += exc.problems
            continue
        name = data.get("name", path.stem) if isinstance(data, dict) else path.stem
        if not isinstance(name, str):
            name = path.stem  # the validator names the bad `name`
        if name in docs:
            problems.append(f"{label}: name: profile {name!r} is defined twice")
            continue
        docs[name] = (label, data)
    return docs


def load_profiles(
    directory: Path | str,
    default_timezone: str = DEFAULT_TIMEZONE,
    local_dir: Path | str | None = None,
) -> dict[str, Profile]:
    """Every ``*.yaml`` profile in ``directory`` by name, with ``local_dir``'s overrides
    applied (resolver.policy.overrides); problems from all files together."""
    directory = Path(directory)
    problems: list[str] = []
    docs = _read_dir(directory, problems)
    if not docs and not problems:
        raise ConfigError(f"{directory}: no *.yaml profiles found")
    if local_dir is not None:
        if not Path(local_dir).is_dir():
            raise ConfigError(f"policies.local_dir: folder {local_dir} does not exist")
        local = _read_dir(Path(local_dir), problems)
        try:
            docs = apply_local(docs, local)
        except ConfigError as exc:
            problems += exc.problems
    profiles: dict[str, Profile] = {}
    for name, (label, data) in docs.items():
        try:
            profiles[name] = profile_from_mapping(data, label, name, default_timezone)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return profiles
