"""The one place that knows post and target statuses and which changes are allowed.

The migration's CHECK constraints list the same statuses (a test keeps them in
step); every repository UPDATE takes its `WHERE status = ANY(...)` from here, so
a change of rules is a change of this file only.
"""

from __future__ import annotations

from collections.abc import Iterable

from db.errors import InvalidInput, InvalidTransition

SCHEDULED = "scheduled"
QUEUED = "queued"
PUBLISHING = "publishing"
POSTED = "posted"
PARTIAL = "partial"
FAILED = "failed"
UNCONFIRMED = "unconfirmed"
CANCELLED = "cancelled"

STATUSES: tuple[str, ...] = (
    SCHEDULED, QUEUED, PUBLISHING, POSTED, PARTIAL, FAILED, UNCONFIRMED, CANCELLED,
)

# publishing -> scheduled is a long rate-limit deferral; publishing -> queued is
# lease reconciliation (the worker died) or a confirmed provider-side failure sending a
# target to the next step; publishing -> publishing is "sent, waiting for the platforms'
# answers" (no lease held). Final statuses have no way out but a provider's revision.
TRANSITIONS: dict[str, frozenset[str]] = {
    SCHEDULED: frozenset({QUEUED, CANCELLED, FAILED}),
    QUEUED: frozenset({PUBLISHING, CANCELLED, SCHEDULED, FAILED}),
    PUBLISHING: frozenset({POSTED, PARTIAL, FAILED, UNCONFIRMED, SCHEDULED, QUEUED,
                           PUBLISHING}),
    POSTED: frozenset(),
    PARTIAL: frozenset(),
    FAILED: frozenset(),
    UNCONFIRMED: frozenset(),
    CANCELLED: frozenset(),
}

FINAL: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# A provider may report a failure after a success (LATE's background checks): a final post
# is then revised, and only so, to one of these (db.confirmations.revise).
REVISABLE: dict[str, frozenset[str]] = {
    POSTED: frozenset({PARTIAL, FAILED}),
    PARTIAL: frozenset({PARTIAL, FAILED}),
}
ACTIVE: tuple[str, ...] = (QUEUED, PUBLISHING)  # the stalled-post sweep looks at these
INSERTABLE: tuple[str, ...] = (QUEUED, SCHEDULED, FAILED)

# Per-platform targets. A posted target never changes: that is exactly-once (a provider's
# later report of failure is recorded as a revision, outside these transitions).
# `accepted`: the provider took it, the platform has not answered yet (not final).
T_PENDING = "pending"
T_ACCEPTED = "accepted"
T_POSTED = "posted"
T_FAILED = "failed"
T_UNCONFIRMED = "unconfirmed"
T_CANCELLED = "cancelled"
TARGET_STATUSES: tuple[str, ...] = (
    T_PENDING, T_ACCEPTED, T_POSTED, T_FAILED, T_UNCONFIRMED, T_CANCELLED)
TARGET_TRANSITIONS: dict[str, frozenset[str]] = {
    T_PENDING: frozenset({T_ACCEPTED, T_POSTED, T_FAILED, T_UNCONFIRMED, T_CANCELLED}),
    # confirmed by the platform, refused by it, or (a provider-side failure the provider
    # confirmed: nothing was published) back to pending for the next step
    T_ACCEPTED: frozenset({T_POSTED, T_FAILED, T_UNCONFIRMED, T_PENDING}),
    # a failed or unconfirmed target may go back to pending for the next provider,
    # or be settled once its fate is known
    T_FAILED: frozenset({T_PENDING, T_POSTED, T_FAILED, T_UNCONFIRMED, T_CANCELLED}),
    T_UNCONFIRMED: frozenset({T_PENDING, T_POSTED, T_FAILED, T_UNCONFIRMED}),
    T_POSTED: frozenset(),
    T_CANCELLED: frozenset(),
}
CREDENTIAL_SOURCES: tuple[str, ...] = ("user", "global")
PROVIDERS: tuple[str, ...] = ("postforme", "late")


def sources(target: str) -> list[str]:
    """Statuses a post may move to `target` from (for `WHERE status = ANY(...)`)."""
    check_status(target)
    return [s for s in STATUSES if target in TRANSITIONS[s]]


def target_sources(target: str) -> list[str]:
    """Target statuses a per-platform target may move to `target` from."""
    check_target_status(target)
    return [s for s in TARGET_STATUSES if target in TARGET_TRANSITIONS[s]]


def sources_all(targets: Iterable[str]) -> list[str]:
    """Statuses from which every one of `targets` is reachable."""
    common = set(STATUSES)
    for t in targets:
        common &= set(sources(t))
    return [s for s in STATUSES if s in common]


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def check_transition(current: str, target: str, post_id: object = None) -> None:
    """Raise InvalidTransition unless current -> target is allowed."""
    if not can_transition(current, target):
        what = f"post {post_id}" if post_id is not None else "post"
        raise InvalidTransition(f"{what}: cannot go from {current!r} to {target!r}")


def check_status(value: object, field: str = "status") -> str:
    if not isinstance(value, str) or value not in TRANSITIONS:
        raise InvalidInput(field, f"must be one of {', '.join(STATUSES)}; got {value!r}")
    return value


def check_target_status(value: object, field: str = "status") -> str:
    if not isinstance(value, str) or value not in TARGET_TRANSITIONS:
        raise InvalidInput(field, f"must be one of {', '.join(TARGET_STATUSES)}; got {value!r}")
    return value
