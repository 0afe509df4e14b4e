"""The ``console:`` section: where the console and block page listen, who may log in."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..allows import NEVER_DEFAULT
from ..config_read import Reader, in_range, split_host_port
from ..policy.decision import AnswerMode
from ..policy.profile import CATEGORIES, Profile
from ..settings import default_state_dir

DEFAULT_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_CATEGORY = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The console is on when ``listen`` is set; the block page listens beside it."""

    host: str
    port: int
    blockpage_host: str
    blockpage_port: int
    tls_refuse_port: int  # HTTPS to the block address is reset here (443)
    networks: tuple[Network, ...]
    users_file: Path | None  # None: console-users.json in the lists' state folder
    session_minutes: int = 480  # a school day
    never_allow: frozenset[str] = NEVER_DEFAULT  # categories no allow opens (adult always)


def console_settings(node: Reader, base: Path) -> ConsoleSettings | None:
    """The section read from the config (None when ``listen`` is not set: off by default)."""
    node.reject_unknown(
        {"listen", "blockpage_listen", "tls_refuse_port", "networks", "users_file",
         "session_minutes", "never_allow"}
    )  # fmt: skip
    listen = _address(node, "listen", None)
    if listen is None:
        return None
    block = _address(node, "blockpage_listen", 80) or (listen[0], 80)
    users = node.get("users_file", "", str)
    return ConsoleSettings(
        host=listen[0],
        port=listen[1],
        blockpage_host=block[0],
        blockpage_port=block[1],
        tls_refuse_port=node.get("tls_refuse_port", 443, int, in_range(0, 65535)),
        networks=_networks(node),
        users_file=(base / users) if users else None,
        session_minutes=node.get("session_minutes", 480, int, in_range(5, 7 * 24 * 60)),
        never_allow=_never_allow(node),
    )


def _never_allow(node: Reader) -> frozenset[str]:
    """Categories never opened, by the console or ``lachan allow``: the listed ones and adult,
    which a config can add to but never take away."""
    found = set(NEVER_DEFAULT)
    for item in node.items("never_allow") if node.has("never_allow") else []:
        if isinstance(item.value, str) and item.value in CATEGORIES:
            found.add(item.value)
        elif isinstance(item.value, str) and _CATEGORY.fullmatch(item.value):  # a typo: a hole
            close = difflib.get_close_matches(item.value, sorted(CATEGORIES), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            item.problem(f"unknown category {item.value!r} "
                         f"({hint}known: {', '.join(sorted(CATEGORIES))})")  # fmt: skip
        else:
            item.problem(f"not a category id (like adult or gambling): {item.value!r}")
    return frozenset(found)


def never_categories(settings: ConsoleSettings | None) -> frozenset[str]:
    """The categories no temporary allow may open for this config (adult without a console)."""
    return settings.never_allow if settings is not None else NEVER_DEFAULT


def _address(node: Reader, key: str, default_port: int | None) -> tuple[str, int] | None:
    text = node.get(key, "", str)
    if not text:
        return None
    try:
        host, port = split_host_port(text, default_port)
    except ValueError as exc:
        node.problem(str(exc), node.child_path(key))
        return None
    return host, port


def _networks(node: Reader) -> tuple[Network, ...]:
    if not node.has("networks"):
        return tuple(ipaddress.ip_network(n) for n in DEFAULT_NETWORKS)
    found = []
    for item in node.items("networks"):
        try:
            found.append(ipaddress.ip_network(str(item.value), strict=False))
        except ValueError:
            item.problem(f"not a network (CIDR such as 192.168.10.0/24): {item.value!r}")
    return tuple(found)


def block_page_address(settings: ConsoleSettings | None) -> tuple[str | None, str | None]:
    """(IPv4, IPv6) that blocked A/AAAA answers carry when a profile names no block page."""
    if settings is None:
        return None, None
    for host in (settings.blockpage_host, settings.host):
        address = ipaddress.ip_address(host)
        if not address.is_unspecified:
            return (host, None) if address.version == 4 else (None, host)
    return None, None


def allowed_network(settings: ConsoleSettings, peer: str | None) -> bool:
    """Whether a login may come from ``peer`` (an IP text; None is never allowed)."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False
    return any(address in network for network in settings.networks)


def state_dir_of(lists_state_dir: Path | None) -> Path:
    """The folder of temporary allows, reviews and the console's logs (the lists' one)."""
    return Path(lists_state_dir or default_state_dir())


def users_path(settings: ConsoleSettings | None, lists_state_dir: Path | None) -> Path:
    if settings is not None and settings.users_file is not None:
        return settings.users_file
    return state_dir_of(lists_state_dir) / "console-users.json"


def unaddressed_block_pages(profiles: Mapping[str, Profile]) -> list[str]:
    """One line per profile answering blockpage without an address (needs the console)."""
    return [
        f"profile {name}: block_answer.mode: blockpage needs address_v4 or address_v6, "
        "or console.listen in the config"
        for name, p in sorted(profiles.items())
        if p.answer.mode is AnswerMode.BLOCKPAGE
        and not (p.answer.address_v4 or p.answer.address_v6)
    ]
