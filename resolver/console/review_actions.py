"""Accepting or dismissing a block-page review request: who may do what."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..allows import AllowError
from . import actions
from .accounts import Account
from .settings import never_categories

if TYPE_CHECKING:
    from .web import Console


def decide_review(
    console: Console, account: Account, review_id: str, form: dict[str, str]
) -> tuple[tuple[str, str], int]:
    """((text key, detail), HTTP status) for the request; the queue changes only on success."""
    choice = form.get("action", "")
    if choice not in ("temporary", "permanent", "dismiss"):
        return ("bad_request", ""), 400
    if choice == "permanent" and account.role != "admin":
        return ("admin_only", ""), 403  # teachers may only allow for a while
    review = next((r for r in console.reviews.pending() if r.id == review_id), None)
    if review is None:
        return ("bad_request", ""), 404
    try:
        _apply(console, account, choice, review.name, review.profile, form)
    except AllowError as exc:
        return ("refused", f": {exc}"), 400
    console.reviews.take(review_id)
    return ("done", ""), 200


def _apply(
    console: Console, account: Account, choice: str, name: str, profile: str,
    form: dict[str, str],
) -> None:  # fmt: skip
    state, now = console.sources.state(), console.clock()
    if choice == "dismiss":
        console.audit.write(account.user, "dismiss", name=name, profile=profile)
    elif choice == "temporary":
        fields = {"name": name, "profile": profile, "duration": form.get("duration", ""),
                  "reason": form.get("reason", "") or "review request"}  # fmt: skip
        never = never_categories(console.sources.config().console)
        actions.grant(console.store, console.audit, state, fields, account.user, now, never)
    else:
        actions.allow_for_good(console.sources.config(), state, console.audit, name, profile,
                               account.user, now)  # fmt: skip
