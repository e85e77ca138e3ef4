"""The ledger changes one attempt implies: `plan()`, `plan_no_step()` and `finalize()`.

Pure functions driven with built outcomes and the real chain and `decide()`; `record()`
below applies a plan's target changes the way the ledger writes them, so a post can be
walked through the whole credential chain without a database.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from providers.outcomes import OutcomeKind, PublishOutcome, TargetResult
from tasks.chain import Step, build_chain
from tasks.decisions import Action, Decision, Policy, decide
from tasks.planning import NO_CREDENTIALS, Plan, TargetChange, finalize, plan, plan_no_step

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
POLICY = Policy()
CHAIN = build_chain(
    {"postforme": "user-pfm-key", "late": "user-late-key"},
    {"postforme": "global-pfm-key", "late": "global-late-key"},
)
PFM_USER, LATE_USER, PFM_GLOBAL, LATE_GLOBAL = CHAIN

Targets = dict[str, dict[str, Any]]


def row(status: str = "pending", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": status,
        "provider": None,
        "credential_source": None,
        "provider_post_id": None,
        "platform_post_id": None,
        "platform_post_url": None,
        "error": None,
    }
    base.update(fields)
    return base


def pending(*platforms: str) -> Targets:
    return {p: row() for p in platforms}


def record(targets: Targets, p: Plan) -> Targets:
    """The targets after the ledger applied `p`'s changes."""
    out = copy.deepcopy(targets)
    for change in p.targets:
        out[change.platform].update({k: v for k, v in change.__dict__.items() if k != "platform"})
    return out


def published(
    provider: str = "PostForMe", post_id: str = "sp_1", **targets: TargetResult
) -> PublishOutcome:
    return PublishOutcome(
        OutcomeKind.PUBLISHED,
        provider,
        201,
        provider_post_id=post_id,
        provider_status="processing",
        targets=dict(targets),
    )


def ok(platform: str, n: int = 1) -> TargetResult:
    return TargetResult(platform, True, f"{platform}-{n}", f"https://{platform}.example/p/{n}")


def attempt(
    targets: Targets,
    platforms: list[str],
    step: Step,
    outcome: PublishOutcome,
    *,
    attempts: int = 1,
    reconciling: bool = False,
    chain: list[Step] = CHAIN,
    decision: Decision | None = None,
) -> Plan:
    return plan(
        targets=targets,
        platforms=platforms,
        chain=chain,
        step=step,
        step_attempts=attempts,
        outcome=outcome,
        decision=decision or decide(outcome, attempts, POLICY),
        reconciling=reconciling,
        now=NOW,
    )


def by_platform(p: Plan) -> dict[str, TargetChange]:
    return {c.platform: c for c in p.targets}


# -- done ---------------------------------------------------------------------------------------


def test_published_everywhere_finishes_posted_with_the_seed_columns() -> None:
    platforms = ["twitter", "linkedin"]
    out = published("PostForMe", "sp_9", twitter=ok("twitter"), linkedin=ok("linkedin"))
    p = attempt(pending(*platforms), platforms, PFM_USER, out)
    assert p.status == "posted"
    assert p.step == PFM_USER.index
    changes = by_platform(p)
    assert changes["twitter"] == TargetChange(
        "twitter",
        "posted",
        "postforme",
        "user",
        "sp_9",
        "twitter-1",
        "https://twitter.example/p/1",
    )
    assert changes["linkedin"].status == "posted"
    assert p.final == {
        "status": "posted",
        "provider": "PostForMe",
        "provider_post_id": "sp_9",
        "platform_post_ids": {"twitter": "twitter-1", "linkedin": "linkedin-1"},
        "platform_post_urls": {
            "twitter": "https://twitter.example/p/1",
            "linkedin": "https://linkedin.example/p/1",
        },
        "posted_at": NOW,
        "error_message": None,
    }


def test_accepted_while_results_are_still_processing_is_not_posted_yet() -> None:
    """PostForMe answers asynchronously: accepted is not posted. The post waits, not final,
    for the platforms' answers (tasks.confirm)."""
    out = published(twitter=TargetResult("twitter", None), bluesky=TargetResult("bluesky", None))
    p = attempt(pending("twitter", "bluesky"), ["twitter", "bluesky"], PFM_USER, out)
    assert p.status == "publishing" and p.final is None
    assert {c.platform: (c.status, c.provider_post_id) for c in p.targets} == {
        "twitter": ("accepted", "sp_1"),
        "bluesky": ("accepted", "sp_1"),
    }


def test_a_refusal_of_the_content_at_create_fails_without_falling_over() -> None:
    refused = TargetResult("instagram", False, error="Instagram requires media",
                           error_class="refused")
    out = published(twitter=ok("twitter"), instagram=refused)
    p = attempt(pending("twitter", "instagram"), ["twitter", "instagram"], LATE_USER, out)
    assert p.status == "partial"
    changes = {c.platform: c for c in p.targets}
    assert changes["instagram"].status == "failed"
    assert "Instagram requires media" in (changes["instagram"].error or "")


def test_a_reconciled_post_without_a_platform_leaves_that_target_to_the_next_step() -> None:
    """The lookup found our earlier create, which went out without bluesky (no account
    there then): twitter is adopted, bluesky was never sent and moves on, not 'posted'."""
    found = published(twitter=TargetResult("twitter", None))
    p = attempt(pending("twitter", "bluesky"), ["twitter", "bluesky"], PFM_USER, found,
                reconciling=True)
    assert (p.status, p.step, p.needs_reconcile) == ("queued", LATE_USER.index, False)
    changes = {c.platform: c for c in p.targets}
    assert (changes["twitter"].status, changes["twitter"].provider_post_id) == (
        "accepted", "sp_1")
    assert changes["bluesky"].status == "pending"
    assert "not in the post the provider holds" in (changes["bluesky"].error or "")


def test_plan_does_not_change_its_input() -> None:
    targets = pending("twitter", "linkedin")
    before = copy.deepcopy(targets)
    attempt(targets, ["twitter", "linkedin"], PFM_USER, published(twitter=ok("twitter")))
    attempt(targets, ["twitter", "linkedin"], PFM_USER, PublishOutcome(OutcomeKind.REJECTED, "x"))
    assert targets == before


# -- some platforms move on while the others are posted -----------------------------------------


def test_missing_accounts_move_on_while_the_rest_is_posted() -> None:
    platforms = ["twitter", "tiktok", "linkedin"]
    out = PublishOutcome(
        OutcomeKind.PUBLISHED,
        "PostForMe",
        201,
        provider_post_id="sp_2",
        targets={"twitter": ok("twitter"), "linkedin": ok("linkedin")},
        missing_platforms=("tiktok",),
    )
    p = attempt(pending(*platforms), platforms, PFM_USER, out)
    assert p.status == "queued"
    assert (p.step, p.step_attempts, p.final) == (LATE_USER.index, 0, None)
    changes = by_platform(p)
    assert changes["twitter"].status == changes["linkedin"].status == "posted"
    assert changes["tiktok"] == TargetChange(
        "tiktok", "pending", error="PostForMe (user): no connected account"
    )


def test_a_target_the_platform_refused_moves_on_with_its_error() -> None:
    platforms = ["twitter", "instagram"]
    out = published(
        twitter=ok("twitter"),
        instagram=TargetResult("instagram", False, error="media aspect ratio"),
    )
    p = attempt(pending(*platforms), platforms, PFM_USER, out)
    assert (p.status, p.step) == ("queued", LATE_USER.index)
    assert by_platform(p)["instagram"] == TargetChange(
        "instagram", "pending", error="PostForMe (user): media aspect ratio"
    )
    refused = published(instagram=TargetResult("instagram", False))
    p = attempt(pending("instagram"), ["instagram"], PFM_USER, refused)
    assert by_platform(p)["instagram"].error == "PostForMe (user): failed at the provider"


def test_partial_results_are_kept_and_the_next_step_serves_the_rest() -> None:
    platforms = ["twitter", "tiktok"]
    first = PublishOutcome(
        OutcomeKind.PUBLISHED,
        "PostForMe",
        201,
        provider_post_id="sp_3",
        targets={"twitter": ok("twitter")},
        missing_platforms=("tiktok",),
    )
    targets = pending(*platforms)
    p1 = attempt(targets, platforms, PFM_USER, first)
    targets = record(targets, p1)
    assert p1.step == LATE_USER.index

    # LATE is asked for tiktok only; twitter stays as PostForMe posted it.
    second = published("LATE", "late_1", tiktok=ok("tiktok", 7))
    p2 = attempt(targets, platforms, LATE_USER, second)
    assert [c.platform for c in p2.targets] == ["tiktok"]
    assert by_platform(p2)["tiktok"].provider == "late"
    assert p2.status == "posted"
    assert p2.final is not None
    assert p2.final["provider"] == "PostForMe"  # the first posted target, in platform order
    assert p2.final["provider_post_id"] == "sp_3"
    assert p2.final["platform_post_ids"] == {"twitter": "twitter-1", "tiktok": "tiktok-7"}
    assert p2.final["error_message"] is None


def test_a_partial_post_when_the_last_step_cannot_serve_a_platform() -> None:
    platforms = ["twitter", "tiktok"]
    targets = {
        "twitter": row("posted", provider="postforme", platform_post_id="t1"),
        "tiktok": row(error="PostForMe (user): no connected account"),
    }
    out = PublishOutcome(
        OutcomeKind.NO_ACCOUNT,
        "LATE",
        error="No connected accounts for: ['tiktok']",
        missing_platforms=("tiktok",),
    )
    p = attempt(targets, platforms, LATE_GLOBAL, out)
    assert p.status == "partial"
    trail = (
        "PostForMe (user): no connected account | "
        "LATE (global): No connected accounts for: ['tiktok']"
    )
    assert by_platform(p) == {"tiktok": TargetChange("tiktok", "failed", error=trail)}
    assert p.final is not None
    assert p.final["error_message"] == f"tiktok: {trail}"
    assert p.final["platform_post_ids"] == {"twitter": "t1"}
    assert p.final["provider"] == "PostForMe"


# -- fall over ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [OutcomeKind.CREDENTIAL_REJECTED, OutcomeKind.REJECTED, OutcomeKind.NO_ACCOUNT]
)
def test_fall_over_queues_the_next_step_with_an_error_trail(kind: OutcomeKind) -> None:
    targets = pending("twitter", "linkedin")
    targets["twitter"]["status"] = "posted"  # posted earlier: not touched again
    out = PublishOutcome(kind, "PostForMe", 401, error="HTTP 401: bad key")
    p = attempt(targets, ["twitter", "linkedin"], PFM_USER, out)
    assert (p.status, p.step, p.step_attempts, p.countdown) == ("queued", 1, 0, 0.0)
    assert p.targets == [
        TargetChange("linkedin", "pending", error="PostForMe (user): HTTP 401: bad key")
    ]


def test_fall_over_skips_absent_steps() -> None:
    chain = build_chain({"postforme": "u"}, {"late": "g"})
    assert [s.index for s in chain] == [0, 3]
    out = PublishOutcome(OutcomeKind.REJECTED, "PostForMe", 400, error="HTTP 400: no")
    p = attempt(pending("twitter"), ["twitter"], chain[0], out, chain=chain)
    assert (p.status, p.step) == ("queued", 3)


def test_transient_to_the_end_of_its_budget_falls_over() -> None:
    out = PublishOutcome(OutcomeKind.TRANSIENT, "LATE", 503, error="HTTP 503: down")
    p = attempt(
        pending("twitter"), ["twitter"], LATE_USER, out, attempts=POLICY.max_transient_attempts
    )
    assert (p.status, p.step) == ("queued", PFM_GLOBAL.index)
    assert p.targets[0].error == "LATE (user): HTTP 503: down"


def test_every_step_failing_fails_the_post_with_a_trail_naming_each_step() -> None:
    platforms = ["twitter", "linkedin"]
    targets = pending(*platforms)
    answers = {
        PFM_USER.index: PublishOutcome(
            OutcomeKind.CREDENTIAL_REJECTED, "PostForMe", 401, error="HTTP 401: invalid key"
        ),
        LATE_USER.index: PublishOutcome(
            OutcomeKind.REJECTED, "LATE", 400, error="HTTP 400: bad media"
        ),
        PFM_GLOBAL.index: PublishOutcome(
            OutcomeKind.TRANSIENT, "PostForMe", 502, error="HTTP 502: bad gateway"
        ),
        LATE_GLOBAL.index: PublishOutcome(
            OutcomeKind.RATE_LIMITED, "LATE", 429, error="HTTP 429: slow down", retry_after=1.0
        ),
    }
    step, attempts, seen = PFM_USER, 0, []
    for _ in range(30):
        attempts += 1
        seen.append(step.index)
        p = attempt(targets, platforms, step, answers[step.index], attempts=attempts)
        targets = record(targets, p)
        if p.final is not None:
            break
        assert p.status == "queued"
        if p.step != step.index:
            assert p.step_attempts == 0
            step, attempts = next(s for s in CHAIN if s.index == p.step), 0
        else:
            assert p.step_attempts == attempts and p.targets == []
    else:
        pytest.fail("the chain never ended")

    assert sorted(set(seen)) == [0, 1, 2, 3]
    assert seen.count(PFM_GLOBAL.index) == POLICY.max_transient_attempts
    assert seen.count(LATE_GLOBAL.index) == POLICY.max_rate_limited_attempts
    trail = (
        "PostForMe (user): HTTP 401: invalid key | LATE (user): HTTP 400: bad media | "
        "PostForMe (global): HTTP 502: bad gateway | LATE (global): HTTP 429: slow down"
    )
    assert p.status == "failed"
    assert {t["status"] for t in targets.values()} == {"failed"}
    assert targets["twitter"]["error"] == targets["linkedin"]["error"] == trail
    assert p.final == {
        "status": "failed",
        "provider": None,
        "provider_post_id": None,
        "platform_post_ids": {},
        "platform_post_urls": {},
        "posted_at": None,
        "error_message": trail,  # one error shared by every platform: said once
    }


def test_fall_over_from_the_last_step_fails_what_is_pending() -> None:
    out = PublishOutcome(OutcomeKind.REJECTED, "LATE", 400, error="HTTP 400: nope")
    targets = {"twitter": row(error="PostForMe (global): HTTP 500: x")}
    p = attempt(targets, ["twitter"], LATE_GLOBAL, out)
    assert p.status == "failed"
    assert p.targets == [
        TargetChange(
            "twitter",
            "failed",
            error="PostForMe (global): HTTP 500: x | LATE (global): HTTP 400: nope",
        )
    ]


def test_a_single_step_chain_fails_at_once() -> None:
    chain = build_chain({}, {"late": "g"})
    out = PublishOutcome(OutcomeKind.REJECTED, "LATE", 400, error="HTTP 400: nope")
    p = attempt(pending("twitter"), ["twitter"], chain[0], out, chain=chain)
    assert p.status == "failed"
    assert p.final is not None and p.final["error_message"] == "LATE (global): HTTP 400: nope"


# -- retry, reconcile, defer ------------------------------------------------------------------


@pytest.mark.parametrize("reconciling", [False, True])
def test_retry_stays_on_this_step_after_the_countdown(reconciling: bool) -> None:
    out = PublishOutcome(OutcomeKind.TRANSIENT, "PostForMe", 503)
    decision = Decision(Action.RETRY, 4.5, "HTTP 503")
    p = attempt(
        pending("twitter"),
        ["twitter"],
        PFM_GLOBAL,
        out,
        attempts=2,
        reconciling=reconciling,
        decision=decision,
    )
    assert p == Plan("queued", PFM_GLOBAL.index, 2, needs_reconcile=reconciling, countdown=4.5)


def test_reconcile_marks_the_next_attempt_to_look_the_post_up_first() -> None:
    out = PublishOutcome(OutcomeKind.AMBIGUOUS, "LATE", None, error="read timeout")
    p = attempt(pending("twitter"), ["twitter"], LATE_USER, out, attempts=1)
    assert (p.status, p.step, p.step_attempts) == ("queued", LATE_USER.index, 1)
    assert p.needs_reconcile is True
    assert p.countdown is not None and 0 < p.countdown <= POLICY.max_countdown
    assert p.targets == [] and p.final is None


@pytest.mark.parametrize("reconciling", [False, True])
def test_defer_goes_back_to_scheduled_until_the_wait_is_over(reconciling: bool) -> None:
    out = PublishOutcome(OutcomeKind.RATE_LIMITED, "LATE", 429, retry_after=3600.0)
    p = attempt(
        pending("twitter"), ["twitter"], LATE_USER, out, attempts=2, reconciling=reconciling
    )
    assert p.status == "scheduled"
    assert (p.step, p.step_attempts, p.needs_reconcile) == (LATE_USER.index, 2, reconciling)
    assert p.defer_until is not None
    assert NOW + timedelta(seconds=3600) <= p.defer_until <= NOW + timedelta(seconds=3601)
    assert p.targets == [] and p.final is None


@pytest.mark.parametrize("retry_after", [float("inf"), 1e12])
def test_an_absurd_retry_after_does_not_break_planning(retry_after: float) -> None:
    out = PublishOutcome(OutcomeKind.RATE_LIMITED, "LATE", 429, retry_after=retry_after)
    p = attempt(pending("twitter"), ["twitter"], LATE_USER, out)
    assert (p.status, p.step) == ("queued", PFM_GLOBAL.index)


# -- ambiguous too long -------------------------------------------------------------------------


def test_ambiguous_too_long_leaves_the_pending_targets_unconfirmed() -> None:
    platforms = ["twitter", "linkedin"]
    targets = {
        "twitter": row("posted", provider="postforme", platform_post_id="t1"),
        "linkedin": row(error="PostForMe (user): HTTP 400: x"),
    }
    out = PublishOutcome(OutcomeKind.AMBIGUOUS, "LATE", None, error="connection reset")
    n = POLICY.max_ambiguous_attempts
    p = attempt(targets, platforms, LATE_USER, out, attempts=n, reconciling=True)
    assert p.status == "unconfirmed"
    assert p.targets == [
        TargetChange(
            "linkedin",
            "unconfirmed",
            "late",
            "user",
            error=f"PostForMe (user): HTTP 400: x | LATE (user): outcome unknown after {n} "
            "attempts: connection reset",
        )
    ]
    assert p.final is not None
    assert p.final["status"] == "unconfirmed"
    assert p.final["platform_post_ids"] == {"twitter": "t1"}  # what is known is kept


def test_unconfirmed_does_not_fall_over_even_with_steps_left() -> None:
    out = PublishOutcome(OutcomeKind.AMBIGUOUS, "PostForMe", None, error="timeout")
    p = attempt(
        pending("twitter"), ["twitter"], PFM_USER, out, attempts=POLICY.max_ambiguous_attempts
    )
    assert p.status == "unconfirmed" and p.step == PFM_USER.index


# -- duplicate: adopted only while reconciling ----------------------------------------------------


def duplicate(existing: str | None = "late_77") -> PublishOutcome:
    return PublishOutcome(
        OutcomeKind.DUPLICATE, "LATE", 409, error="HTTP 409: duplicate", existing_post_id=existing
    )


def test_a_duplicate_while_reconciling_is_our_own_post_adopted() -> None:
    # adopted, never resent; whether the platform took it, the confirmation asks LATE
    p = attempt(pending("twitter"), ["twitter"], LATE_USER, duplicate(), reconciling=True)
    assert p.status == "publishing" and p.final is None
    assert p.targets == [
        TargetChange("twitter", "accepted", "late", "user", provider_post_id="late_77")
    ]


def test_a_duplicate_on_a_first_send_fails_and_is_not_sent_elsewhere() -> None:
    p = attempt(pending("twitter"), ["twitter"], LATE_USER, duplicate(), reconciling=False)
    assert p.status == "failed"  # steps remain, yet nothing moves on: it would double the post
    assert p.targets == [
        TargetChange("twitter", "failed", "late", "user", error="LATE (user): HTTP 409: duplicate")
    ]


def test_a_duplicate_without_the_existing_id_cannot_be_adopted() -> None:
    p = attempt(pending("twitter"), ["twitter"], LATE_USER, duplicate(None), reconciling=True)
    assert p.status == "failed"


def test_a_duplicate_leaves_missing_platforms_to_the_next_step() -> None:
    out = PublishOutcome(
        OutcomeKind.DUPLICATE,
        "LATE",
        409,
        error="HTTP 409",
        existing_post_id="late_1",
        missing_platforms=("tiktok",),
    )
    p = attempt(
        pending("twitter", "tiktok"), ["twitter", "tiktok"], LATE_USER, out, reconciling=True
    )
    assert (p.status, p.step) == ("queued", PFM_GLOBAL.index)
    assert {c.platform: c.status for c in p.targets} == {
        "twitter": "accepted", "tiktok": "pending"}


# -- no step left -------------------------------------------------------------------------------


def test_no_credentials_at_all_fails_every_pending_target() -> None:
    p = plan_no_step(pending("twitter", "linkedin"), ["twitter", "linkedin"], False, NOW)
    assert p.status == "failed"
    assert {c.platform: (c.status, c.error) for c in p.targets} == {
        "twitter": ("failed", NO_CREDENTIALS),
        "linkedin": ("failed", NO_CREDENTIALS),
    }
    assert p.final is not None and p.final["error_message"] == NO_CREDENTIALS
    assert "POSTFORME_API_KEY" in NO_CREDENTIALS and "LATE_API_KEY" in NO_CREDENTIALS


def test_no_step_left_keeps_the_trail_of_the_steps_that_were_tried() -> None:
    targets = {
        "twitter": row("posted", provider="late", platform_post_id="t9"),
        "linkedin": row(error="PostForMe (user): HTTP 401: x"),
        "bluesky": row(),
    }
    p = plan_no_step(targets, ["twitter", "linkedin", "bluesky"], True, NOW)
    assert p.status == "partial"
    assert {c.platform: c.error for c in p.targets} == {
        "linkedin": "PostForMe (user): HTTP 401: x",
        "bluesky": NO_CREDENTIALS,
    }
    assert p.final is not None
    assert p.final["provider"] == "LATE"
    assert p.final["error_message"] == (
        f"linkedin: PostForMe (user): HTTP 401: x; bluesky: {NO_CREDENTIALS}"
    )


def test_no_step_defaults_now_to_the_current_time() -> None:
    targets = {"twitter": row("posted", provider="postforme")}
    p = plan_no_step(targets, ["twitter"], True)
    assert p.status == "posted" and p.targets == []
    assert p.final is not None and p.final["posted_at"] is not None
    assert p.final["posted_at"].tzinfo is not None


# -- finalize -----------------------------------------------------------------------------------


def test_finalize_statuses() -> None:
    posted = row("posted", provider="postforme")
    failed = row("failed", error="e")
    unconfirmed = row("unconfirmed", error="u")
    assert finalize({"a": posted, "b": posted}, ["a", "b"], NOW)["status"] == "posted"
    assert finalize({"a": posted, "b": failed}, ["a", "b"], NOW)["status"] == "partial"
    assert finalize({"a": failed, "b": failed}, ["a", "b"], NOW)["status"] == "failed"
    assert finalize({"a": posted, "b": unconfirmed}, ["a", "b"], NOW)["status"] == "unconfirmed"
    assert finalize({"a": failed, "b": unconfirmed}, ["a", "b"], NOW)["status"] == "unconfirmed"


def test_finalize_seed_columns_follow_the_platform_order() -> None:
    targets = {
        "linkedin": row(
            "posted",
            provider="late",
            provider_post_id="late_5",
            platform_post_id="li-5",
            platform_post_url="https://linkedin.example/5",
        ),
        "twitter": row(
            "posted",
            provider="postforme",
            provider_post_id="sp_5",
            platform_post_id="tw-5",
            platform_post_url=None,
        ),
        "tiktok": row("failed", error="LATE (global): HTTP 400: too short"),
    }
    final = finalize(targets, ["twitter", "linkedin", "tiktok"], NOW)
    assert final == {
        "status": "partial",
        "provider": "PostForMe",
        "provider_post_id": "sp_5",
        "platform_post_ids": {"twitter": "tw-5", "linkedin": "li-5"},
        "platform_post_urls": {"linkedin": "https://linkedin.example/5"},
        "posted_at": NOW,
        "error_message": "tiktok: LATE (global): HTTP 400: too short",
    }
    assert finalize(targets, ["linkedin", "twitter", "tiktok"], NOW)["provider"] == "LATE"


def test_finalize_error_message_names_platforms_when_errors_differ() -> None:
    targets = {"twitter": row("failed", error="A"), "linkedin": row("failed", error="B")}
    assert finalize(targets, ["twitter", "linkedin"], NOW)["error_message"] == (
        "twitter: A; linkedin: B"
    )
    same = {"twitter": row("failed", error="A"), "linkedin": row("failed", error="A")}
    assert finalize(same, ["twitter", "linkedin"], NOW)["error_message"] == "A"
    partial = {"twitter": row("posted", provider="late"), "linkedin": row("failed", error="A")}
    assert finalize(partial, ["twitter", "linkedin"], NOW)["error_message"] == "linkedin: A"


def test_finalize_ignores_targets_outside_the_platform_list() -> None:
    targets = {"twitter": row("posted", provider="postforme"), "stray": row("failed", error="x")}
    assert finalize(targets, ["twitter"], NOW)["status"] == "posted"
    assert finalize(targets, [], NOW)["status"] == "partial"  # no list: every target counts


# -- poison posts -----------------------------------------------------------------------------


@pytest.mark.parametrize(("may_have_sent", "status"), [(True, "unconfirmed"), (False, "failed")])
def test_a_post_whose_attempts_keep_crashing_ends(may_have_sent: bool, status: str) -> None:
    from tasks.planning import plan_poison

    targets = {"twitter": row("posted", provider="late"), "bluesky": row()}
    p = plan_poison(targets, ["twitter", "bluesky"], may_have_sent=may_have_sent, crashed=5)
    assert [(c.platform, c.status) for c in p.targets] == [("bluesky", status)]
    assert "5 attempts in a row" in (p.targets[0].error or "")
    assert p.status == ("unconfirmed" if may_have_sent else "partial")
