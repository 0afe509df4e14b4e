"""What a blocklist lookup returns: the rule that won for a name, and why."""

from __future__ import annotations

import enum
from typing import NamedTuple


class ListAction(enum.Enum):
    """What a matching list rule asks for (RPZ actions map onto these too)."""

    BLOCK = "block"  # block in the profile's block mode (NXDOMAIN by default)
    ALLOW = "allow"  # an exception: @@||name^, RPZ PASSTHRU, allow-list; beats BLOCK
    NODATA = "nodata"  # RPZ "CNAME *."
    DROP = "drop"  # RPZ "rpz-drop."
    REWRITE = "rewrite"  # RPZ local-data: answer with ``rewrite`` records


class ListMatch(NamedTuple):
    """The winning rule for a queried name.

    ``categories`` are catalogue ids (``adult``, ``gambling``...), ``source`` the source id
    that listed it, ``rule`` the listed name as written after normalisation (``example.com``
    or ``*.example.com``), ``rewrite`` the local-data records for REWRITE as
    ``(rtype, rdata_text)`` pairs, e.g. ``(("CNAME", "safe.example."),)``.
    ``mask`` is the same categories as a bitmask over the index's category order
    (``Index.category_mask(...)`` builds a profile's mask), the cheap test on the hot path.

    A NamedTuple rather than a frozen dataclass: it is as immutable, and one is built per
    blocklist hit, where a frozen dataclass's __init__ cost several times more.
    """

    action: ListAction
    categories: frozenset[str]
    source: str
    rule: str
    rewrite: tuple[tuple[str, str], ...] = ()
    mask: int = 0
