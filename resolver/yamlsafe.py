"""YAML documents read safely, with libyaml's parser when PyYAML was built with it.

The pure-Python SafeLoader takes ~32 ms for the shipped catalogue, libyaml's ~2 ms: every
start reads the catalogue, the profiles and the config. A document libyaml rejects is read
again by the pure-Python loader, whose error names the problem better ("expected ',' or ']'"
rather than "did not find expected ',' or ']'") on the line operators expect.
"""

from __future__ import annotations

from typing import Any

import yaml

_FAST: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(document: str | bytes) -> Any:
    """The document's data (yaml.safe_load's result); yaml.YAMLError if it is not valid."""
    try:
        return yaml.load(document, Loader=_FAST)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        return yaml.safe_load(document)  # raises again, with the clearer message
