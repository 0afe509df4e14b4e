"""Local overrides: a site keeps only its differences from the shipped profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
from policy_helpers import POLICIES

from resolver.errors import ConfigError
from resolver.policy.loader import load_profiles
from resolver.policy.overrides import apply_local, merge


def test_lists_extend_and_mappings_change_only_the_keys_given() -> None:
    base = {"block": ["adult"], "safe_search": {"google": "on", "youtube": "strict"},
            "keywords": {"block": ["porn"]}, "description": "shipped"}  # fmt: skip
    local = {"block": ["games", "adult"], "safe_search": {"youtube": "moderate"},
             "keywords": {"block": ["xxx"]}, "description": "ours"}  # fmt: skip
    assert merge(base, local, set()) == {
        "block": ["adult", "games"],
        "safe_search": {"google": "on", "youtube": "moderate"},
        "keywords": {"block": ["porn", "xxx"]},
        "description": "ours",
    }


def test_replace_names_the_keys_whose_shipped_value_goes() -> None:
    base = {"block": ["adult", "games"], "allow": ["a.example"]}
    local = {"block": ["adult"], "allow": ["b.example"], "replace": ["block"]}
    docs = apply_local({"p": ("shipped/p.yaml", base)}, {"p": ("local/p.yaml", local)})
    label, body = docs["p"]
    assert label == "local/p.yaml (over shipped/p.yaml)"
    assert body == {"block": ["adult"], "allow": ["a.example", "b.example"], "name": "p"}


def test_a_new_profile_may_extend_a_shipped_one() -> None:
    shipped = {"school": ("policies/school.yaml", {"block": ["adult"], "allow": ["olm.vn"]})}
    local = {"lab": ("local/lab.yaml", {"extends": "school", "allow": ["scratch.mit.edu"]})}
    assert apply_local(shipped, local)["lab"][1] == {
        "block": ["adult"], "allow": ["olm.vn", "scratch.mit.edu"], "name": "lab",
    }  # fmt: skip


def test_mistakes_name_the_local_file_and_key() -> None:
    shipped = {"school": ("policies/school.yaml", {})}
    local = {
        "lab": ("local/lab.yaml", {"extends": "shcool"}),
        "school": ("local/school.yaml", {"replace": ["blokc"]}),
    }
    with pytest.raises(ConfigError) as caught:
        apply_local(shipped, local)
    assert caught.value.problems == [
        "local/lab.yaml: extends: unknown profile 'shcool' (known: school)",
        "local/school.yaml: replace: 'blokc' is not a list or mapping key (known: allow, "
        "anti_bypass, block, block_answer, censored, deny, keywords, safe_search, schedules, "
        "security)",
    ]


def test_one_local_file_changes_school_and_keeps_the_other_shipped_profiles(
    tmp_path: Path,
) -> None:
    (tmp_path / "school.yaml").write_text(
        "block: [social]\nallow: [scratch.mit.edu]\nsafe_search: {youtube: strict}\n"
    )
    profiles = load_profiles(POLICIES, local_dir=tmp_path)
    shipped = load_profiles(POLICIES)
    assert set(profiles) == set(shipped)
    school = profiles["school"]
    assert school.block == shipped["school"].block | {"social"}
    assert "scratch.mit.edu" in school.allow.exact
    assert shipped["school"].allow.exact <= school.allow.exact
    assert school.safe_search.modes["youtube"] == "strict"
    for name in ("under16", "isp-default"):  # untouched (keyword automata have no ==)
        ours, theirs = profiles[name], shipped[name]
        assert (ours.block, ours.allow, ours.schedules, ours.safe_search, ours.source) == (
            theirs.block, theirs.allow, theirs.schedules, theirs.safe_search, theirs.source
        )  # fmt: skip


def test_a_bad_value_in_a_local_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "school.yaml").write_text("block: [gamez]\n")
    with pytest.raises(ConfigError) as caught:
        load_profiles(POLICIES, local_dir=tmp_path)
    (line,) = caught.value.problems
    assert line.startswith(f"{tmp_path.name}/school.yaml (over policies/school.yaml): block[")
    assert "unknown category 'gamez'" in line
