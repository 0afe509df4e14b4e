"""Where the files lachan ships (profiles, catalogue, bundled lists) are found."""

from __future__ import annotations

from pathlib import Path

# An installed wheel carries policies/ and blocklists/ under resolver/_shipped/ (setup.py copies
# them at build time); a checkout or editable install reads them where the repository keeps
# them, so that the engineers editing them there never see a stale copy.
_PACKAGED = Path(__file__).resolve().parent / "_shipped"
_CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` ("policies" or "blocklists"): packaged copy, else checkout."""
    packaged = _PACKAGED / name
    return packaged if packaged.is_dir() else _CHECKOUT / name
