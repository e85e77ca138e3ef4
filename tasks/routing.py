"""Routing by capability: targets asking for what PostForMe cannot publish (a thread, a
first comment) pass over the PostForMe steps and go to LATE.

Two places decide it. Intake refuses such a post at once when the user's chain has no
LATE key at all (nothing would ever be sent). The delivery engine, on a PostForMe step,
leaves those targets out of the request and logs a `skipped` attempt for them, naming the
reason; when no target of the step is left the step is skipped whole, the way an open
circuit is (tasks.delivery). Plain functions: no Celery, one query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from db import delivery as ledger
from db.pool import Conn
from providers.content import late_only
from tasks.chain import Step, global_keys, step_at_or_after

INCAPABLE = frozenset({"postforme"})  # providers without threads and first comments


def has_late_key(conn: Conn, user_id: str) -> bool:
    """A LATE key somewhere in the user's chain: the global one, or a valid own key."""
    if global_keys().get("late"):
        return True
    row = conn.execute(
        """SELECT 1 FROM user_social_credentials
            WHERE user_id = %s AND provider = 'late' AND invalid_at IS NULL""",
        (user_id,),
    ).fetchone()
    return row is not None


def unroutable(overrides: Mapping[str, Mapping[str, Any]] | None,
               has_late: Callable[[], bool]) -> list[str]:
    """Why this post can never be sent (LATE-only targets and no LATE key in the chain),
    one problem per target; `has_late` is asked only when a target needs LATE."""
    needs = late_only(overrides)
    if not needs or has_late():
        return []
    return [f"overrides.{platform}: {why}, and this user's chain has no LATE key: store "
            "one (`socialpost credentials set USER_ID late`) or set LATE_API_KEY, or drop "
            "the thread / first comment" for platform, why in needs.items()]


def intake_problems(conn: Conn, user_id: str,
                    overrides: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """unroutable(), the user's chain read from `conn`."""
    return unroutable(overrides, lambda: has_late_key(conn, user_id))


def passed_over(claim: ledger.Claim, step: Step) -> dict[str, str]:
    """Pending targets this step's provider cannot publish: platform -> reason."""
    if step.provider not in INCAPABLE:
        return {}
    needs = late_only(claim.overrides)
    return {p: why for p, why in needs.items()
            if p in claim.targets and claim.targets[p]["status"] == "pending"}


def skip_incapable(
    claim: ledger.Claim, chain: list[Step], step: Step | None
) -> tuple[ledger.Claim, Step | None, tuple[ledger.AttemptRow, ...], dict[str, str]]:
    """Steps none of whose pending targets their provider can publish are skipped (an
    attempt row `skipped` each, the reason on the targets). On the step that stays, the
    targets it cannot publish come back as `passed` (platform -> reason): left out of the
    request, they go on to the next step whatever this one answers. A post being
    reconciled stays on its step (its send may have landed); the targets that send could
    not carry still come back as `passed`, so its outcome never makes them unconfirmed."""
    skipped: list[ledger.AttemptRow] = []
    while step is not None:
        passed = passed_over(claim, step)
        pending = [p for p in claim.platforms if claim.targets[p]["status"] == "pending"]
        if not passed or (claim.needs_reconcile and len(passed) == len(pending)):
            return claim, step, tuple(skipped), {}
        if claim.needs_reconcile or len(passed) < len(pending):
            # Never sent here: whatever the lookup of this step's send finds, they go on.
            # Logged once, on the step's first try (not on each retry or paced turn).
            if claim.step_attempts == 0 and claim.paced_since is None \
                    and not claim.needs_reconcile:
                skipped.append(skip_row(step, list(passed), "; ".join(passed.values())))
            return claim, step, tuple(skipped), passed
        claim, step, row = skip_step(claim, chain, step, "; ".join(passed.values()),
                                     {p: f"skipped: {why}" for p, why in passed.items()})
        skipped.append(row)
    return claim, step, tuple(skipped), {}


def skip_step(
    claim: ledger.Claim, chain: list[Step], step: Step, why: str,
    notes: dict[str, str] | None = None,
) -> tuple[ledger.Claim, Step | None, ledger.AttemptRow]:
    """Pass over `step` for every pending target without a call: the claim moved on to
    the next present step (the reason on each target's trail, `notes` per platform or
    `why`), the next step, and the attempt log's `skipped` line. Shared with the open
    circuit's skip (tasks.delivery)."""
    pending = [p for p in claim.platforms if claim.targets[p]["status"] == "pending"]
    targets = {p: dict(t) for p, t in claim.targets.items()}
    for p in pending:
        entry = f"{step.label}: {(notes or {}).get(p, why)}"
        previous = targets[p].get("error")
        targets[p]["error"] = f"{previous} | {entry}" if previous else entry
    nxt = step_at_or_after(chain, step.index + 1)
    claim = replace(claim, targets=targets, step=nxt.index if nxt else claim.step,
                    step_attempts=0, paced_since=None)
    return claim, nxt, skip_row(step, pending, why)


def skip_row(step: Step, platforms: list[str], why: str) -> ledger.AttemptRow:
    """The attempt log's line for targets a step passed over without a call."""
    return ledger.AttemptRow(
        step=step.index, provider=step.provider, credential_source=step.source,
        platforms=platforms, idempotency_key=None, http_status=None, latency_ms=0,
        outcome="skipped", error=why, provider_post_id=None)


def refuse_unroutable(user_id: str, overrides: Mapping[str, Mapping[str, Any]] | None) -> None:
    """InvalidRequest naming each unroutable target (producers that record the row
    themselves: the client); only such posts cost a read."""
    from db.pool import connection
    from tasks.validation import InvalidRequest

    def has_late() -> bool:
        with connection() as conn:
            return has_late_key(conn, user_id)

    problems = unroutable(overrides, has_late)
    if problems:
        raise InvalidRequest(problems)
