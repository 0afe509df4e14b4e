"""Safe search: which names each engine's setting rewrites, and to which enforced host."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from resolver.policy import safesearch_data as data

# The modes a profile may set per engine; every engine but YouTube is on or off.
ENGINE_MODES: Final[Mapping[str, tuple[str, ...]]] = {
    "google": ("on", "off"),
    "youtube": ("strict", "moderate", "off"),
    "bing": ("on", "off"),
    "duckduckgo": ("on", "off"),
    "yandex": ("on", "off"),
    "ecosia": ("on", "off"),
    "pixabay": ("on", "off"),
    "brave": ("on", "off"),
}

# Rewrite A and AAAA, and HTTPS (65): a browser that gets an HTTPS record for www.google.com
# would connect with its ALPN/ECH hints and never look at the rewritten A record.
REWRITE_QTYPES: Final = frozenset({1, 28, 65})

# Google serves search on these hosts too; unrewritten they are a way round SafeSearch.
_GOOGLE_HOSTS: Final = ("", "www.", "encrypted.", "ipv6.")


@dataclass(frozen=True, slots=True)
class SafeSearch:
    """A profile's safe-search setting: engine → mode (see ENGINE_MODES); absent means off."""

    modes: Mapping[str, str]

    def enabled(self, engine: str) -> bool:
        """Whether ``engine`` is enforced in any mode."""
        return self.modes.get(engine, "off") != "off"


def _google() -> dict[str, str]:
    return {
        f"{host}google.{suffix}": data.GOOGLE_TARGET
        for suffix in data.GOOGLE_SUFFIXES
        for host in _GOOGLE_HOSTS
    }


def _names(names: tuple[str, ...], target: str) -> dict[str, str]:
    return dict.fromkeys(names, target)


def _yandex() -> dict[str, str]:
    table = _names(data.YANDEX_DOMAINS, data.YANDEX_TARGET)
    table.update((f"www.{d}", data.YANDEX_TARGET) for d in data.YANDEX_DOMAINS)
    return table


def engine_names(engine: str, mode: str) -> dict[str, str]:
    """Queried name → target host for one engine in ``mode`` ({} when off)."""
    if mode == "off":
        return {}
    if engine == "google":
        return _google()
    if engine == "youtube":
        return _names(data.YOUTUBE_NAMES, data.YOUTUBE_TARGETS[mode])
    if engine == "yandex":
        return _yandex()
    simple = {
        "bing": (data.BING_NAMES, data.BING_TARGET),
        "duckduckgo": (data.DUCKDUCKGO_NAMES, data.DUCKDUCKGO_TARGET),
        "ecosia": (data.ECOSIA_NAMES, data.ECOSIA_TARGET),
        "pixabay": (data.PIXABAY_NAMES, data.PIXABAY_TARGET),
        "brave": (data.BRAVE_NAMES, data.BRAVE_TARGET),
    }
    names, target = simple[engine]
    return _names(names, target)


def rewrite_table(setting: SafeSearch) -> dict[str, tuple[str, str]]:
    """Every rewritten name → (engine, target host) for ``setting``."""
    table: dict[str, tuple[str, str]] = {}
    for engine, mode in setting.modes.items():
        for name, target in engine_names(engine, mode).items():
            if name != target:  # never rewrite a target onto itself (a CNAME loop)
                table[name] = (engine, target)
    return table
