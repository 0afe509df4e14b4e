"""The canary TXT format round-trips and rejects malformed answers."""

from __future__ import annotations

import pytest

from resolver.coverage.canary import CanaryError, CanaryStatus, format_canary, parse_canary


def test_round_trip() -> None:
    status = CanaryStatus("thpt-a", "under16", "sha256:ab12", 5400, "0.1.0", "school",
                          (("block", "nxdomain"),))  # fmt: skip
    texts = format_canary(status)
    assert texts == ("site=thpt-a", "profile=under16", "index=sha256:ab12", "index_age=5400",
                     "version=0.1.0", "kind=school", "block=nxdomain")  # fmt: skip
    assert parse_canary(texts) == status
    assert parse_canary([t.encode() for t in reversed(texts)]) == status


def test_several_pairs_in_one_string_are_accepted() -> None:
    got = parse_canary(["site=a profile=p", "index=x index_age=0"])
    assert (got.site, got.profile, got.index, got.index_age) == ("a", "p", "x", 0)


@pytest.mark.parametrize(
    ("texts", "why"),
    [
        (["site=a", "profile=p", "index=x"], "missing index_age"),
        (["site=a", "profile=p", "index=x", "index_age=soon"], "whole seconds"),
        (["site=a", "site=b", "profile=p", "index=x", "index_age=1"], "twice"),
        (["hello"], "key=value"),
        (["Site=a"], "key=value"),
    ],
)
def test_malformed(texts: list[str], why: str) -> None:
    with pytest.raises(CanaryError, match=why):
        parse_canary(texts)


def test_format_refuses_spaces_and_negative_age() -> None:
    with pytest.raises(CanaryError):
        format_canary(CanaryStatus("a b", "p", "x", 1))
    with pytest.raises(CanaryError):
        format_canary(CanaryStatus("a", "p", "x", -1))
