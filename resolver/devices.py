"""Device IDs on the encrypted listeners: which profile a connection gets, or why it is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from . import reply
from .encrypted_config import EncryptedSettings
from .querystate import ClientState
from .ratelimit import RateLimiter, Verdict
from .wire import FORMERR, Unanswerable, WireError
from .wire_query import parse_query

if TYPE_CHECKING:
    from .pipeline import Resolver


class DeviceLimits:
    """Rate limits per device ID: each known device has its own token buckets, wherever it is.

    A family's phone behind carrier NAT shares its address with hundreds of others; its device
    ID does not. Each device gets a synthetic address of its own (a /48 in fd00::/8) in a
    limiter of its own, so the address prefixes of the configuration (/64, /56) apply to it
    alone and never meet a real client's buckets.
    """

    def __init__(self, limiter: RateLimiter | None, clock: Callable[[], float]) -> None:
        self._limiter = None if limiter is None else RateLimiter(limiter.config, clock=clock)
        self._keys: dict[str, str] = {}

    def check_for(self, device: str) -> Callable[[str], Verdict] | None:
        """The per-query check for ``device`` (it ignores the address), None without limits."""
        limiter = self._limiter
        if limiter is None:
            return None
        key = self._keys.get(device)
        if key is None:
            n = len(self._keys)  # bounded: only configured devices get here
            key = self._keys[device] = f"fd00:{n >> 16 & 0xFFFF:x}:{n & 0xFFFF:x}::1"
        return lambda _ip: limiter.check(key)


class Refusal:
    """What a connection that may not be served gets for every query: REFUSED, EDE 18 + text."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def choose(
    resolver: Resolver,
    settings: EncryptedSettings,
    device: str | None,
    ip: str,
    where: tuple,
    limits: DeviceLimits | None = None,
) -> ClientState | Refusal:
    """The client a connection is served as: by its device ID first, else by its address.

    A known device is admitted whatever its address (its ID is the credential: the phone is
    on 4G, not on the school network the access list describes). Its ClientState carries no
    prepared answers, so it can never be served those of the address's profile.
    """
    if device is None:
        if settings.require_device_id:
            return Refusal(reply.DEVICE_REQUIRED_TEXT)
        return resolver.client({}, ip, where)
    profile_name = settings.devices.get(device)
    profile = None if profile_name is None else resolver.state.profiles.get(profile_name)
    if profile is None:
        return Refusal(reply.UNKNOWN_DEVICE_TEXT.format(device[:63]))
    client = ClientState(profile, None, True, False)
    client.limit = limits.check_for(device) if limits is not None else None
    return client


def refuse(resolver: Resolver, data: bytes, refusal: Refusal, transport: int) -> bytes | None:
    """The REFUSED answer for one query of a refused connection (None: nothing to answer)."""
    stats, udp_size = resolver.stats, resolver.policy.udp_size
    try:
        query = parse_query(data)
    except Unanswerable:
        return None
    except WireError as exc:
        stats.record_answer(transport, "formerr", "none", "none", 0.0)
        return reply.error(data, exc.rcode or FORMERR, exc.query, udp_size)
    stats.record_query(transport, query.qtype)
    stats.record_answer(transport, "refused", "none", "none", 0.0)
    return resolver.state.blocks.refused(query, refusal.text)
