"""The delivery engine: one provider attempt for one post, the ledger deciding who may send.

    claim (conditional UPDATE with a lease) -> one provider call -> record (one statement)

Celery's `social.deliver` task and the synchronous seed service both drive it (the
service waiting in process between attempts, see tasks.in_process); neither holds state
of its own, so a worker killed anywhere leaves PostgreSQL saying what to do
next: a queued post is re-sent by the recovery sweep, a publishing post whose lease ran
out is taken over in reconcile mode (looked up at the provider before any resend).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, overload

import settings
from db import credentials as creds
from db import delivery as ledger
from db.errors import VaultError
from db.pool import connection
from db.vault import Vault
from providers import circuit, pacing
from providers.base import HttpProvider
from providers.errors import ProviderCallError
from providers.late import LateProvider
from providers.memo import BoundedCache
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest
from providers.postforme import PostForMeProvider
from tasks import metrics, routing
from tasks.chain import DISPLAY, Step, build_chain, idempotency_key, step_at_or_after
from tasks.decisions import Decision, Policy, decide
from tasks.planning import Plan, plan, plan_no_step, plan_poison

log = logging.getLogger("socialpost.delivery")

# Bounded and expiring (providers.memo): a client holds its decrypted key, and a worker
# serving many users would otherwise keep one per key it ever used.
_providers: BoundedCache[tuple[str, str], HttpProvider] = BoundedCache()
_vault: Vault | None = None


_policy: Policy | None = None


def default_policy() -> Policy:
    """The retry policy from the environment, read once per process."""
    global _policy
    if _policy is None:
        _policy = Policy.from_env()
    return _policy


def vault() -> Vault:
    """The process's vault, built once from ENCRYPTION_KEY."""
    global _vault
    if _vault is None:
        _vault = Vault.from_env()
    return _vault


@overload
def client_for(provider: Literal["postforme"], api_key: str) -> PostForMeProvider: ...
@overload
def client_for(provider: str, api_key: str) -> HttpProvider: ...
def client_for(provider: str, api_key: str) -> HttpProvider:
    """One client per (provider, key) per process, so connections and account lists are reused."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    cls = PostForMeProvider if provider == "postforme" else LateProvider
    return _providers.get_or_put((provider, digest), lambda: cls(api_key),
                                 settings.current().client_cache_seconds)


def provider_for(step: Step) -> HttpProvider:
    """The process's client for a chain step (see client_for)."""
    return client_for(step.provider, step.api_key)


def lease_seconds() -> float:
    """A claim's lease: the slowest single call of either provider (connect + read) plus a
    margin. It is renewed right before each create (db.delivery.start_send), so once it
    has run out no request of that attempt can still be in flight, and a takeover may look
    the post up safely."""
    from providers.config import max_request_seconds

    return max_request_seconds() + 30.0


@dataclass(frozen=True)
class AttemptResult:
    """What the caller does next: nothing (`countdown` None) or run again after `countdown`."""

    post_id: str
    status: str | None  # the post's status after this attempt; None if it was not ours to run
    countdown: float | None = None
    confirm: bool = False  # sent; accepted targets wait for their platforms' answers


def decrypt_keys(encrypted: dict[str, str], post_id: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for provider, token in encrypted.items():
        try:
            keys[provider] = vault().decrypt(token)
        except VaultError as exc:
            log.error("post %s: cannot decrypt the user's %s key: %s", post_id, provider, exc)
    return keys


def _attempt(
    client: HttpProvider,
    request: PublishRequest,
    reconciling: bool,
    before_send: Callable[[], bool] | None = None,
) -> PublishOutcome:
    """Reconcile first when an earlier send may have landed; otherwise send.

    While reconciling, only a lookup by our id decides: found, it is adopted; not found, a
    resend happens only where the provider deduplicates on our key (LATE replays an
    x-request-id / Idempotency-Key, and answers a repeat's content with a 409 naming the
    existing post). PostForMe does not, so there the lookup is asked again later, until
    the budget makes the targets `unconfirmed`: never a blind second create."""
    if reconciling and request.idempotency_key:
        try:
            found = client.find_post(request.idempotency_key)
        except ProviderCallError as exc:
            if exc.outcome.kind is OutcomeKind.PACED:  # no permit to ask yet: wait for one
                return exc.outcome
            # Cannot tell yet: stay ambiguous, never resend blind.
            return PublishOutcome(
                OutcomeKind.AMBIGUOUS,
                client.name,
                exc.outcome.http_status,
                f"lookup failed: {exc.outcome.error}",
                latency_ms=exc.outcome.latency_ms,
            )
        if found is not None:
            return found
        if not client.dedupes_resends:
            return PublishOutcome(
                OutcomeKind.AMBIGUOUS,
                client.name,
                error=f"no post with our id at {client.name} yet; {client.name} does not "
                "deduplicate creates, so it is not sent again",
            )
    return client.publish(request, allow_partial=True, before_send=before_send)


@dataclass(frozen=True)
class ClaimedAtInsert:
    """A new due post that intake inserted already claimed by its task: the first
    attempt needs no claim statement of its own."""

    claim: ledger.Claim

    @property
    def post_id(self) -> str:
        return self.claim.post_id

    def run(self, owner: str, policy: Policy | None = None, *, dsn: str | None = None
            ) -> AttemptResult:
        return run_claimed(self.claim, owner, policy, dsn=dsn)


@dataclass(frozen=True)
class RepeatOfDuePost:
    """A due post that already existed when its request came again (a redelivered or
    repeated message): claim it under the same owner, which for a `publishing` post
    means looking it up at the provider before any resend."""

    post_id: str

    def run(self, owner: str, policy: Policy | None = None, *, dsn: str | None = None
            ) -> AttemptResult:
        return run_attempt(self.post_id, owner, policy, dsn=dsn)


FirstAttempt = ClaimedAtInsert | RepeatOfDuePost


def run_attempt(
    post_id: str, owner: str, policy: Policy | None = None, *, dsn: str | None = None
) -> AttemptResult:
    """Claim `post_id`, make one provider call, record it. Safe to call any number of times."""
    with connection(dsn) as conn:
        claim = ledger.claim(conn, post_id, owner, lease_seconds())
    if claim is None:
        return AttemptResult(post_id, None)
    return run_claimed(claim, owner, policy, dsn=dsn)


@dataclass(frozen=True)
class Attempted:
    """One attempt's call and its consequences, before anything is recorded."""

    plan: Plan
    attempt: ledger.AttemptRow | None  # None when no step was left to call
    rejected_user_key: str | None = None  # the provider whose user key was refused
    skipped: tuple[ledger.AttemptRow, ...] = ()  # steps passed over (open circuit)


def attempt_once(
    claim: ledger.Claim,
    chain: list[Step],
    policy: Policy,
    *,
    scheduled_for: datetime | None = None,
    shared_accounts: bool | None = None,
    before_send: Callable[[], bool] | None = None,
) -> Attempted:
    """The engine's one step, free of the ledger: pick the claim's credential step, make
    one provider call (a lookup first when an earlier send may have landed), decide, plan.
    The provider picks the claim's user's accounts on the step's key (providers.ownership).
    `scheduled_for` and `shared_accounts` (False: only accounts the provider ties to the
    user) are for the unrecorded path only: it hands a future post to the provider's
    scheduler, and posts without the ledger to vouch for the organisation's accounts.
    `before_send` runs right before a create goes out; False means do not send."""
    now = datetime.now(UTC)
    step = step_at_or_after(chain, claim.step)
    claim, step, skipped = _skip_open_circuits(claim, chain, step)
    claim, step, by_capability, passed = routing.skip_incapable(claim, chain, step)
    skipped += by_capability
    if step is None:
        return Attempted(plan_no_step(claim.targets, claim.platforms, bool(chain), now), None,
                         skipped=skipped)
    pending = tuple(p for p in claim.platforms
                    if claim.targets[p]["status"] == "pending" and p not in passed)
    request = PublishRequest(
        content=claim.content,
        platforms=pending,
        media_urls=tuple(claim.media_urls),
        scheduled_for=scheduled_for,
        idempotency_key=idempotency_key(claim.post_id, step.index),
        platform_options=claim.platform_options or {},
        overrides=claim.overrides or {},
        user_id=claim.user_id,
        credential_source=step.source,
        account_ids=dict(claim.account_ids or {}),
        shared_accounts=shared_accounts,
    )
    with pacing.attempt(waited=claim.paced_since is not None):
        outcome = _attempt(provider_for(step), request, claim.needs_reconcile, before_send)
    held_back = outcome.kind in (OutcomeKind.PACED, OutcomeKind.HELD)  # nothing was sent
    attempts = claim.step_attempts + (0 if held_back else 1)
    waited = (now - claim.paced_since).total_seconds() if claim.paced_since else None
    decision: Decision = decide(outcome, attempts, policy, reconciling=claim.needs_reconcile,
                                waited=waited if outcome.kind is OutcomeKind.PACED else None)
    next_plan = plan(
        targets=claim.targets,
        platforms=claim.platforms,
        chain=chain,
        step=step,
        step_attempts=attempts,
        outcome=outcome,
        decision=decision,
        reconciling=claim.needs_reconcile,
        now=now,
        max_countdown=policy.max_countdown,
        passed_over=passed,
    )
    row = ledger.AttemptRow(
        step=step.index,
        provider=step.provider,
        credential_source=step.source,
        platforms=list(pending),
        idempotency_key=request.idempotency_key,
        http_status=outcome.http_status,
        latency_ms=int(outcome.latency_ms),
        outcome=outcome.kind.value,
        error=outcome.error,
        provider_post_id=outcome.provider_post_id or outcome.existing_post_id,
    )
    refused = (
        step.provider
        if outcome.kind is OutcomeKind.CREDENTIAL_REJECTED and step.source == "user"
        else None
    )
    return Attempted(next_plan, row, refused, skipped)


def _skip_open_circuits(
    claim: ledger.Claim, chain: list[Step], step: Step | None
) -> tuple[ledger.Claim, Step | None, tuple[ledger.AttemptRow, ...]]:
    """Pass over steps whose provider's circuit is open, for targets never sent there
    (no unresolved send: a post being reconciled stays on its step), as long as a later
    step on a provider whose circuit is closed can serve them; each skip is logged and
    noted on the targets. With no such step left the post stays and waits for the
    circuit (its call is held back: tasks.decisions, Action.WAIT)."""
    skipped: list[ledger.AttemptRow] = []
    if claim.needs_reconcile:
        return claim, step, ()
    while step is not None:
        found = circuit.is_open(provider_for(step).base_url)
        if found is None:
            break
        later = [s for s in chain if s.index > step.index and s.provider != step.provider]
        if not any(circuit.is_open(provider_for(s).base_url) is None for s in later):
            break
        claim, step, row = routing.skip_step(claim, chain, step,
                                             found.reason(DISPLAY[step.provider]))
        skipped.append(row)
    return claim, step, tuple(skipped)


def run_claimed(
    claim: ledger.Claim, owner: str, policy: Policy | None = None, *, dsn: str | None = None
) -> AttemptResult:
    """The attempt itself, for a post `owner` holds (claimed, or inserted claimed)."""
    post_id = claim.post_id
    crashed = claim.open_claims - 1  # the claims before this one that recorded nothing
    if crashed >= settings.current().max_crashed_attempts:
        ended = plan_poison(claim.targets, claim.platforms,
                            may_have_sent=claim.needs_reconcile, crashed=crashed)
        log.error("post %s: %d attempts in a row crashed; ending it as %s",
                  post_id, crashed, ended.status)
        with connection(dsn) as conn:
            ledger.record(conn, claim, owner, ended, attempt=None)
        return AttemptResult(post_id, ended.status)
    chain = build_chain(decrypt_keys(claim.credentials, post_id))

    def start_send() -> bool:
        with connection(dsn) as conn:
            return ledger.start_send(conn, post_id, owner, lease_seconds())

    done = attempt_once(claim, chain, policy or default_policy(), before_send=start_send)
    with connection(dsn) as conn:
        kept = ledger.record(conn, claim, owner, done.plan, attempt=done.attempt,
                             skipped=done.skipped)
        if done.rejected_user_key and done.attempt is not None:
            creds.mark_invalid(conn, claim.user_id, done.rejected_user_key,
                               done.attempt.error or "rejected")
    if not kept:
        log.warning("post %s: lease lost before recording; the new holder reconciles", post_id)
        return AttemptResult(post_id, None)
    metrics.attempted([*done.skipped, *([done.attempt] if done.attempt else [])],
                      reconciling=claim.needs_reconcile,
                      first_send=claim.step == 0 and claim.step_attempts == 0,
                      scheduled_for=claim.scheduled_for)
    return result_of(post_id, done.plan)


def result_of(post_id: str, next_plan: Plan) -> AttemptResult:
    """What the caller of an attempt does next, from the plan that was recorded."""
    if next_plan.status == "queued":
        return AttemptResult(post_id, "queued", next_plan.countdown or 0.0)
    # `publishing` here: sent, waiting for the platforms (tasks.confirm asks them)
    return AttemptResult(post_id, next_plan.status, confirm=next_plan.status == "publishing")
