"""Turns one attempt's outcome into the ledger changes it implies. Pure: no I/O.

The delivery engine claims a post, makes one provider call, then hands the claim, the
step, the outcome and the decision to `plan()`; what comes back is written in a single
statement. Keeping this pure is what lets every branch be tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.outcomes import OutcomeKind, PublishOutcome
from tasks.chain import DISPLAY, Step, step_at_or_after
from tasks.decisions import Action, Decision

NO_CREDENTIALS = (
    "No social posting credentials configured: store a user key with "
    "`socialpost credentials set` or set POSTFORME_API_KEY / LATE_API_KEY"
)


@dataclass(frozen=True)
class TargetChange:
    platform: str
    status: str  # pending | accepted | posted | failed | unconfirmed
    provider: str | None = None  # "postforme" | "late"
    credential_source: str | None = None
    provider_post_id: str | None = None
    platform_post_id: str | None = None
    platform_post_url: str | None = None
    error: str | None = None
    published_at: datetime | None = None  # the platform's publish time, when told


@dataclass(frozen=True)
class Plan:
    """The post's next state. `status` is queued (run again after `countdown`),
    scheduled (deferred until `defer_until`), publishing (sent; some targets `accepted`,
    waiting for the platforms' answers, no lease held) or final (`final` holds the seed
    columns)."""

    status: str
    step: int
    step_attempts: int
    needs_reconcile: bool = False
    countdown: float | None = None  # for queued: seconds until the next attempt
    defer_until: datetime | None = None
    targets: list[TargetChange] = field(default_factory=list)
    final: dict[str, Any] | None = None
    paced: bool = False  # waiting for a permit on this step (db: paced_since kept or set)


def _trail(previous: str | None, step: Step, reason: str) -> str:
    entry = f"{step.label}: {reason}"
    return f"{previous} | {entry}" if previous else entry


def _unserved(
    targets: dict[str, dict[str, Any]], platform: str, step: Step, outcome: PublishOutcome
) -> TargetChange:
    """A target this step could not serve for want of this user's account: it falls over
    to the next step; one refused (another user's account named, or a choice among
    several left open) fails here, with the reason."""
    why = outcome.account_errors.get(platform, "no connected account")
    trail = _trail(targets[platform].get("error"), step, why)
    if platform in outcome.refused_platforms:
        return TargetChange(platform, "failed", step.provider, step.source, error=trail)
    return TargetChange(platform, "pending", error=trail)


def finalize(
    targets: dict[str, dict[str, Any]], platforms: list[str], now: datetime
) -> dict[str, Any]:
    """The post's final status and seed columns from its (final) targets."""
    order = [p for p in platforms if p in targets] or list(targets)
    statuses = [targets[p]["status"] for p in order]
    posted = [p for p in order if targets[p]["status"] == "posted"]
    if any(s == "unconfirmed" for s in statuses):
        status = "unconfirmed"
    elif len(posted) == len(order):
        status = "posted"
    elif posted:
        status = "partial"
    else:
        status = "failed"
    first = targets[posted[0]] if posted else None
    errors = {p: targets[p].get("error") for p in order if targets[p]["status"] != "posted"}
    distinct = {e for e in errors.values() if e}
    if not distinct:
        message = None
    elif len(distinct) == 1 and len(errors) == len(order):
        message = distinct.pop()
    else:
        message = "; ".join(f"{p}: {e}" for p, e in errors.items() if e)
    return {
        "status": status,
        "provider": DISPLAY.get(first["provider"], first["provider"]) if first else None,
        "provider_post_id": first.get("provider_post_id") if first else None,
        "platform_post_ids": {
            p: targets[p]["platform_post_id"] for p in posted if targets[p].get("platform_post_id")
        },
        "platform_post_urls": {
            p: targets[p]["platform_post_url"]
            for p in posted
            if targets[p].get("platform_post_url")
        },
        # the platform's publish time (the earliest), not when we heard of it
        "posted_at": min((_when(targets[p]["published_at"]) for p in posted
                          if targets[p].get("published_at")), default=now) if posted else None,
        "error_message": message,
    }


def _when(value: datetime | str) -> datetime:
    """A time from a target row: a datetime, or ISO text as a claim's JSON carries it."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _settle(
    targets: dict[str, dict[str, Any]],
    changes: list[TargetChange],
    platforms: list[str],
    next_step: Step | None,
    step_index: int,
    now: datetime,
    *,
    countdown: float = 0.0,
) -> Plan:
    """After this step's changes: finish, or queue the still-pending targets for `next_step`."""
    merged = {p: dict(t) for p, t in targets.items()}
    for c in changes:
        merged[c.platform].update({k: v for k, v in c.__dict__.items() if k != "platform"})
    still_pending = [p for p, t in merged.items() if t["status"] == "pending"]
    if still_pending and next_step is not None:
        return Plan("queued", next_step.index, 0, countdown=countdown, targets=changes)
    if not still_pending and any(t["status"] == "accepted" for t in merged.values()):
        return Plan("publishing", step_index, 0, targets=changes)  # the platforms answer later
    if still_pending:  # no step left: what is pending has failed everywhere
        extra = [
            TargetChange(p, "failed", error=merged[p].get("error") or "no provider step left")
            for p in still_pending
        ]
        for c in extra:
            merged[c.platform].update(status="failed", error=c.error)
        changes = [c for c in changes if c.platform not in still_pending] + extra
    final = finalize(merged, platforms, now)
    return Plan(final["status"], step_index, 0, targets=changes, final=final)


def plan_poison(
    targets: dict[str, dict[str, Any]],
    platforms: list[str],
    *,
    may_have_sent: bool,
    crashed: int,
    now: datetime | None = None,
) -> Plan:
    """`crashed` attempts in a row ended before recording anything (a bug, a hard time
    limit): stop re-claiming the post. Its pending targets are `unconfirmed` when a send
    may have happened (the provider may hold the post), else `failed`."""
    moment = now or datetime.now(UTC)
    why = (f"gave up after {crashed} attempts in a row that crashed or were cut off before "
           "recording an outcome")
    status = "unconfirmed" if may_have_sent else "failed"
    note = "; a send may have reached the provider" if may_have_sent else "; nothing was sent"
    changes = [
        TargetChange(p, status, error=_join(t.get("error"), why + note))
        for p, t in targets.items()
        if t["status"] == "pending"
    ]
    return _settle(targets, changes, platforms, None, 0, moment)


def _join(previous: str | None, entry: str) -> str:
    return f"{previous} | {entry}" if previous else entry


def plan_no_step(
    targets: dict[str, dict[str, Any]],
    platforms: list[str],
    any_chain: bool,
    now: datetime | None = None,
) -> Plan:
    """No credential step is left (or none was ever configured): pending targets fail."""
    moment = now or datetime.now(UTC)
    changes = [
        TargetChange(
            p, "failed", error=t.get("error") if any_chain and t.get("error") else NO_CREDENTIALS
        )
        for p, t in targets.items()
        if t["status"] == "pending"
    ]
    return _settle(targets, changes, platforms, None, 0, moment)


def plan(
    *,
    targets: dict[str, dict[str, Any]],
    platforms: list[str],
    chain: list[Step],
    step: Step,
    step_attempts: int,
    outcome: PublishOutcome,
    decision: Decision,
    reconciling: bool,
    now: datetime | None = None,
    max_countdown: float = 300.0,
    passed_over: dict[str, str] | None = None,
) -> Plan:
    """`targets` maps platform -> current target row (status, error, ...), as claimed.
    A wait longer than `max_countdown` goes back to PostgreSQL as `scheduled`.
    `passed_over` (platform -> reason) are pending targets this step's provider cannot
    publish (tasks.routing): not sent, they go on to the next step whatever it answered."""
    moment = now or datetime.now(UTC)
    passed = passed_over or {}
    pending = [p for p, t in targets.items() if t["status"] == "pending" and p not in passed]
    nxt = step_at_or_after(chain, step.index + 1)
    action = decision.action
    moved = [TargetChange(p, "pending", error=_trail(targets[p].get("error"), step,
                                                     f"skipped: {why}"))
             for p, why in passed.items()]

    if action is Action.WAIT:
        if decision.countdown > max_countdown:
            return Plan("scheduled", step.index, step_attempts, needs_reconcile=reconciling,
                        defer_until=moment + timedelta(seconds=decision.countdown), paced=True)
        return Plan("queued", step.index, step_attempts, needs_reconcile=reconciling,
                    countdown=decision.countdown, paced=True)
    if action is Action.RETRY or action is Action.RECONCILE:
        return Plan(
            "queued",
            step.index,
            step_attempts,
            needs_reconcile=action is Action.RECONCILE or reconciling,
            countdown=decision.countdown,
        )
    if action is Action.DEFER:
        return Plan(
            "scheduled",
            step.index,
            step_attempts,
            needs_reconcile=reconciling,
            defer_until=moment + timedelta(seconds=decision.countdown),
        )
    if action is Action.UNCONFIRMED:
        changes = [
            TargetChange(
                p,
                "unconfirmed",
                step.provider,
                step.source,
                error=_trail(
                    targets[p].get("error"),
                    step,
                    f"outcome unknown after {step_attempts} attempts: {decision.reason}",
                ),
            )
            for p in pending
        ]
        return _settle(targets, changes + moved, platforms, nxt if moved else None,
                       step.index, moment)
    if action is Action.FALL_OVER:
        changes = [
            _unserved(targets, p, step, outcome)
            if p in outcome.account_errors
            else TargetChange(
                p, "pending", error=_trail(targets[p].get("error"), step, decision.reason))
            for p in pending
        ]
        return _settle(targets, changes + moved, platforms, nxt, step.index, moment)

    # RECORD: the provider answered for the platforms it serves.
    changes = []
    if outcome.kind is OutcomeKind.DUPLICATE:
        for p in pending:
            if p in outcome.missing_platforms:
                continue
            if reconciling and outcome.existing_post_id:
                # Our own earlier create, answered late: adopt it, never resend; whether
                # the platform took it, the confirmation sweep asks.
                changes.append(
                    TargetChange(
                        p,
                        "accepted",
                        step.provider,
                        step.source,
                        provider_post_id=outcome.existing_post_id,
                    )
                )
            else:
                # Same content already on that account: posting it elsewhere would double it.
                changes.append(
                    TargetChange(
                        p,
                        "failed",
                        step.provider,
                        step.source,
                        error=_trail(targets[p].get("error"), step, decision.reason),
                    )
                )
    else:
        for p in pending:
            if p in outcome.missing_platforms:
                continue
            result = outcome.targets.get(p)
            if result is not None and result.success is False and (
                    result.error_class == "refused"):
                # The platform refused the content or the account: another provider would
                # be refused too. Failed, with the platform's reason.
                changes.append(TargetChange(
                    p, "failed", step.provider, step.source,
                    provider_post_id=outcome.provider_post_id,
                    error=_trail(targets[p].get("error"), step,
                                 result.error or "refused by the platform")))
                continue
            if result is None or result.success is False:
                # Not in the provider's answer: not part of the post it holds (a reconciled
                # create that went out without this platform's account). Posted only if
                # named. Or a failure on the provider's side: nothing was published.
                why = "not in the post the provider holds" if result is None else (
                    result.error or "failed at the provider")
                changes.append(
                    TargetChange(p, "pending", error=_trail(targets[p].get("error"), step, why))
                )
                continue
            changes.append(
                TargetChange(
                    p,
                    "posted" if result.success else "accepted",
                    step.provider,
                    step.source,
                    provider_post_id=outcome.provider_post_id,
                    platform_post_id=result.platform_post_id,
                    platform_post_url=result.platform_post_url,
                    published_at=result.published_at,
                )
            )
    for p in outcome.missing_platforms:
        if p in pending:
            changes.append(_unserved(targets, p, step, outcome))
    return _settle(targets, changes + moved, platforms, nxt, step.index, moment)
