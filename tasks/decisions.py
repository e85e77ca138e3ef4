"""What to do after one provider attempt: DESIGN.md's outcome table as a plain function.

No I/O here, so every row of the table is tested directly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum

import settings
from providers.outcomes import OutcomeKind, PublishOutcome
from tasks.backoff import backoff_seconds

RATE_LIMIT_MARGIN = 0.05  # seconds past the provider's reset, so a retry is not early by a tick
# A rate-limit wait beyond this is not waited for (a post may not be scheduled further ahead
# either, and "inf" or a far-future reset cannot become a datetime): fall over instead.
MAX_RATE_LIMIT_WAIT = 365 * 86_400.0


class Action(str, Enum):
    RECORD = "record"  # the provider answered for the targets: record them; missing ones move on
    RETRY = "retry"  # same step again after `countdown`
    RECONCILE = "reconcile"  # same step after `countdown`, looking the post up before any resend
    DEFER = "defer"  # wait longer than a countdown may: back to `scheduled` at now + `countdown`
    WAIT = "wait"  # no permit yet (pacing, open circuit): same step after `countdown`, uncounted
    FALL_OVER = "fall_over"  # every pending target moves to the next credential step
    UNCONFIRMED = "unconfirmed"  # ambiguous too long: the pending targets cannot be known


@dataclass(frozen=True)
class Policy:
    """Retry budget per credential step; countdowns never exceed `max_countdown`."""

    max_transient_attempts: int = 4
    max_rate_limited_attempts: int = 6
    max_ambiguous_attempts: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    max_countdown: float = 300.0
    max_rate_limit_wait: float = 900.0

    @classmethod
    def from_env(cls) -> Policy:
        """The policy from the settings module (SOCIALPOST_MAX_*_ATTEMPTS, backoff, countdown)."""
        s = settings.current()
        return cls(
            max_transient_attempts=s.max_transient_attempts,
            max_rate_limited_attempts=s.max_rate_limited_attempts,
            max_ambiguous_attempts=s.max_ambiguous_attempts,
            backoff_base=s.backoff_base,
            backoff_cap=s.backoff_cap,
            max_countdown=s.max_countdown,
            max_rate_limit_wait=s.rate_limit_max_wait,
        )


@dataclass(frozen=True)
class Decision:
    action: Action
    countdown: float = 0.0
    reason: str = ""


def decide(
    outcome: PublishOutcome, step_attempts: int, policy: Policy, *, reconciling: bool = False,
    waited: float | None = None,
) -> Decision:
    """`step_attempts` counts attempts on this step including the one just made (a call
    held back by pacing is no attempt); `waited`: seconds the post has been waiting for a
    permit on this step (None: it was not waiting).

    `reconciling`: an earlier send on this step may have created the post and the provider
    has not shown that it did not. Then no other step may send these targets: what would
    fall over stays `unconfirmed` (with the reason) instead, never a second create."""
    decision = _decide(outcome, step_attempts, policy, waited)
    if reconciling and decision.action is Action.FALL_OVER:
        return Decision(
            Action.UNCONFIRMED,
            reason=f"an earlier send may have published it and {outcome.provider} has not "
            f"shown otherwise, so no other provider may send it; then: {decision.reason}",
        )
    return decision


def _decide(outcome: PublishOutcome, step_attempts: int, policy: Policy,
            waited: float | None = None) -> Decision:
    kind = outcome.kind
    why = outcome.error or kind.value
    if kind is OutcomeKind.PACED:
        if waited is not None and waited >= policy.max_rate_limit_wait:
            return Decision(Action.FALL_OVER, reason=f"no permit after waiting {waited:.0f} s "
                            f"(SOCIALPOST_RATE_LIMIT_MAX_WAIT): {why}")
        wait = _finite(outcome.retry_after, 1.0)
        # Never wait past the policy's limit: come back then, and fall over if no permit.
        wait = min(wait, max(0.0, policy.max_rate_limit_wait - (waited or 0.0)) + 0.5)
        return Decision(Action.WAIT, wait, why)
    if kind is OutcomeKind.HELD:
        return Decision(Action.DEFER, min(_finite(outcome.retry_after, 60.0),
                                          MAX_RATE_LIMIT_WAIT), why)
    if kind in (OutcomeKind.PUBLISHED, OutcomeKind.DUPLICATE):
        return Decision(Action.RECORD, reason=why)
    if kind is OutcomeKind.TRANSIENT:
        if step_attempts < policy.max_transient_attempts:
            wait = backoff_seconds(step_attempts, base=policy.backoff_base, cap=policy.backoff_cap)
            return Decision(Action.RETRY, min(wait, policy.max_countdown), why)
        return Decision(Action.FALL_OVER, reason=why)
    if kind is OutcomeKind.RATE_LIMITED:
        if step_attempts >= policy.max_rate_limited_attempts:
            return Decision(Action.FALL_OVER, reason=why)
        given = outcome.retry_after
        if given is None or math.isnan(given) or given <= 0:
            wait = backoff_seconds(step_attempts, base=policy.backoff_base, cap=policy.backoff_cap)
        else:
            wait = given
        if wait > MAX_RATE_LIMIT_WAIT:
            return Decision(Action.FALL_OVER, reason=f"{why} (retry after {wait:g} s: too long)")
        # The countdown, margin included, may never exceed max_countdown: else defer.
        # Jitter, so that the workers told the same Retry-After do not return in step; with
        # the margin, never more than a second past what the provider said.
        wait += random.uniform(0.0, min(1.0 - RATE_LIMIT_MARGIN, 0.1 * wait))
        if wait + RATE_LIMIT_MARGIN > policy.max_countdown:
            return Decision(Action.DEFER, wait, why)
        return Decision(Action.RETRY, wait + RATE_LIMIT_MARGIN, why)
    if kind is OutcomeKind.AMBIGUOUS:
        if step_attempts < policy.max_ambiguous_attempts:
            wait = backoff_seconds(step_attempts, base=policy.backoff_base, cap=policy.backoff_cap)
            return Decision(Action.RECONCILE, min(wait, policy.max_countdown), why)
        return Decision(Action.UNCONFIRMED, reason=why)
    # CREDENTIAL_REJECTED, REJECTED, NO_ACCOUNT: this step cannot serve; the next may.
    return Decision(Action.FALL_OVER, reason=why)


def _finite(value: float | None, default: float) -> float:
    if value is None or math.isnan(value) or value < 0 or math.isinf(value):
        return default
    return value
