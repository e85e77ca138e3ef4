"""Confirmation: a target is `posted` only when its platform says so.

A provider's 2xx means it took the post; each platform answers later (PostForMe's
results, LATE's target statuses). Beat runs `sweep` every SOCIALPOST_RESULTS_INTERVAL
seconds: it asks about the accepted targets waited on longest (PostForMe: up to 100
results per call; LATE: one post per call), judges each answer (`judge`, pure), writes
what changed and settles the posts whose targets are all final (`settle`, pure):

    the platform's answer            the target                      the post
    published                        posted (its ids, publish time)  final once all are
    refused the content / account    failed, the platform's reason   final once all are
    failed on the provider's side    pending: the next step may try  queued again
    none by ACCEPTED_DEADLINE        unconfirmed, provider's post id final once all are
    LATE: failed after a success     failed (a revision)             revised

Each provider's targets are taken in a batch of their own, so one provider's backlog
cannot starve the other. They are asked one credential at a time (a global key's targets
of every user together), as background calls (`pacing.background()`: a capped share of
the key's rate budget, yielding to creates). A call refused for want of a permit (PACED)
stops that key for this pass: its remaining targets are given back with their previous
checked_at, so the next pass takes them first, and the sweep goes on with other keys.

Provider webhooks (tasks.provider_hooks, behind the HTTP API) are the fast path: they
judge with `judge` and write with `write`, as the sweep does; this sweep stays the net.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import settings
from db import confirmations
from db import delivery as ledger
from db.pool import Conn, connection
from providers import pacing
from providers.base import HttpProvider
from providers.errors import ProviderCallError
from providers.outcomes import OutcomeKind, TargetResult
from providers.postforme import PostForMeProvider
from tasks.chain import CHAIN, DISPLAY, Step, build_chain
from tasks.planning import finalize

log = logging.getLogger("socialpost.confirm")
PAGE = 100  # PostForMe's results page (`limit`, at most 100 results): one call per page
Send = Callable[[str], None]
KeyRef = tuple[str, str, str | None]  # (provider, source, user id for the user's own key)


@dataclass(frozen=True)
class Answer:
    """What a provider said of one target: its result (None: nothing yet), and for
    PostForMe whether the post is `processed` (then its results are final)."""

    result: TargetResult | None
    final: bool = True


def _label(row: dict[str, Any]) -> str:
    return f"{DISPLAY.get(row['provider'], row['provider'])} ({row['credential_source']})"


def _trail(previous: str | None, entry: str) -> str:
    return f"{previous} | {entry}" if previous else entry


def judge(row: dict[str, Any], answer: Answer, now: datetime,
          deadline: float) -> dict[str, Any] | None:
    """The change one answer makes to the target `row` (as taken by the sweep), or None.
    Pure: the rules of the module docstring's table."""
    base = {"post_id": row["post_id"], "platform": row["platform"], "was": row["status"]}
    result = answer.result
    label = _label(row)
    if row["status"] == "posted":  # LATE's revision window
        if result is not None and result.success is False:
            why = f"{label}: reported failed after it was published: {result.error or '-'}"
            return {**base, "status": "failed", "outcome": "revised", "error": why}
        return None
    waited = (now - row["accepted_at"]).total_seconds() if row.get("accepted_at") else 0.0
    if result is not None and result.success is True:
        return {**base, "status": "posted", "outcome": "confirmed", "error": None,
                "platform_post_id": result.platform_post_id,
                "platform_post_url": result.platform_post_url,
                "published_at": result.published_at or now}
    # A failure counts once it is final (PostForMe: the post is `processed`; until then a
    # retry of its own may still succeed): falling over on a failure PostForMe might yet
    # turn into a success would publish twice. Past the deadline it is unknown instead.
    if result is not None and result.success is False and answer.final:
        reason = result.error or "no reason given"
        if result.error_class == "refused":
            return {**base, "status": "failed", "outcome": "refused",
                    "error": _trail(row.get("error"), f"{label}: refused by the platform: "
                                                      f"{reason}")}
        return {**base, "status": "pending", "outcome": "failed_at_provider",
                "error": _trail(row.get("error"), f"{label}: failed at the provider, nothing "
                                                  f"published: {reason}")}
    if waited > deadline:
        last = f" (last answer: {result.error})" if result is not None and result.error else ""
        why = (f"{label}: accepted {waited:.0f} s ago (post {row['provider_post_id']}) and "
               f"no final outcome from the platform yet{last}: unknown whether it was "
               "published")
        return {**base, "status": "unconfirmed", "outcome": "unconfirmed",
                "error": _trail(row.get("error"), why)}
    return None


def settle(post: dict[str, Any], now: datetime) -> tuple[str, Any] | None:
    """What becomes of a post after its targets changed: ("requeue", step) when some went
    back to pending, ("finish", final columns) when all are final, None while some wait.
    Pure. A requeued post goes on past the step that failed it."""
    targets: dict[str, dict[str, Any]] = post["targets"] or {}
    pending = [t for t in targets.values() if t["status"] == "pending"]
    if pending:
        failed_at = [CHAIN.index((t["credential_source"], t["provider"])) for t in pending
                     if (t.get("credential_source"), t.get("provider")) in CHAIN]
        return "requeue", max([post["step"] or 0, *(i + 1 for i in failed_at)])
    if any(t["status"] == "accepted" for t in targets.values()):
        return None
    return "finish", finalize(targets, list(post["platforms"] or []), now)


def _by_provider_post(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Targets grouped by the provider's post that holds them (one question each)."""
    by_post: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_post[r["provider_post_id"]].append(r)
    return by_post


def key_of(row: dict[str, Any]) -> KeyRef | None:
    """The credential a target was sent with: (provider, source, the user for the user's
    own key; None for a global key, shared by every user). None: nothing to ask about."""
    if not (row.get("provider") and row.get("provider_post_id")):
        return None
    source = row["credential_source"]
    return (row["provider"], source, str(row["user_id"]) if source == "user" else None)


def group_by_key(rows: list[dict[str, Any]]) -> dict[KeyRef, list[dict[str, Any]]]:
    """One group per credential: a global key's targets of every user ask together."""
    groups: dict[KeyRef, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        ref = key_of(r)
        if ref is not None:
            groups[ref].append(r)
    return dict(groups)


def units_for(provider: str, rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The calls one key's rows take, in turn: PostForMe the provider posts whose targets
    fit about one results page (PAGE targets; a retried account's second result takes
    the reader to the next page: fetch_results_many reads every page), LATE one
    provider post (each unit: the rows it answers)."""
    by_post = list(_by_provider_post(rows).values())
    if provider != "postforme":
        return by_post
    units: list[list[dict[str, Any]]] = []
    for post in by_post:
        if not units or len(units[-1]) + len(post) > PAGE:
            units.append([])
        units[-1].extend(post)
    return units


def ask_in_turn(units: list[list[dict[str, Any]]],
                ask_unit: Callable[[list[dict[str, Any]]], None],
                ) -> tuple[list[dict[str, Any]], float | None]:
    """Ask one key unit after unit. A call refused for want of a permit (PACED) stops this
    key for this pass: that unit's rows and the rest are returned, to be given back, with
    the wait the refusal named. Any other failure leaves its unit unanswered (asked again
    after SOCIALPOST_RESULTS_EVERY) and goes on. Pure but for `ask_unit`."""
    for i, unit in enumerate(units):
        try:
            ask_unit(unit)
        except ProviderCallError as exc:
            if exc.outcome.kind is OutcomeKind.PACED:
                return [r for u in units[i:] for r in u], exc.outcome.retry_after
            log.info("confirmation: %s: %s", exc.outcome.provider, exc.outcome.error)
    return [], None


def _ask_postforme(client: PostForMeProvider, unit: list[dict[str, Any]],
                   answers: dict[tuple[str, str], Answer]) -> None:
    by_post = _by_provider_post(unit)
    results = client.fetch_results_many(list(by_post))
    for provider_post_id, rows in by_post.items():
        found = results.get(provider_post_id, {})
        processed = True
        if any(r.success is False for r in found.values()):
            try:  # a failure is final only once the post is processed (a retry may win)
                processed = client.post_status(provider_post_id) == "processed"
            except ProviderCallError as exc:
                if exc.outcome.kind is OutcomeKind.PACED:
                    raise
                processed = False
        for row in rows:
            answers[(str(row["post_id"]), row["platform"])] = Answer(
                found.get(row["platform"]), processed)


def _ask_late(client: HttpProvider, unit: list[dict[str, Any]],
              answers: dict[tuple[str, str], Answer]) -> None:
    for provider_post_id, rows in _by_provider_post(unit).items():
        found = client.fetch_results(provider_post_id)
        for row in rows:
            answers[(str(row["post_id"]), row["platform"])] = Answer(found.get(row["platform"]))


def _step_for(ref: KeyRef, keys: dict[str, dict[str, str]]) -> Step | None:
    from tasks.delivery import decrypt_keys

    provider, source, user_id = ref
    user_keys = decrypt_keys(keys.get(user_id, {}), f"user {user_id}") if user_id else {}
    return next((s for s in build_chain(user_keys)
                 if s.provider == provider and s.source == source), None)


def ask(rows: list[dict[str, Any]], keys: dict[str, dict[str, str]]
        ) -> tuple[dict[tuple[str, str], Answer], list[dict[str, Any]]]:
    """The providers' answers for `rows`, one credential at a time, as background calls
    (each key's budget is spent, within its background share), and the rows left unasked
    because their key had no permit to spare."""
    from tasks.delivery import client_for

    answers: dict[tuple[str, str], Answer] = {}
    left: list[dict[str, Any]] = []
    with pacing.background():
        for ref, group in group_by_key(rows).items():
            step = _step_for(ref, keys)
            if step is None:
                log.warning("confirmation: no %s key (%s%s) to ask with", ref[0], ref[1],
                            f", user {ref[2]}" if ref[2] else "")
                continue
            client = client_for(step.provider, step.api_key)
            if isinstance(client, PostForMeProvider):
                ask_unit = functools.partial(_ask_postforme, client, answers=answers)
            else:
                ask_unit = functools.partial(_ask_late, client, answers=answers)
            rest, wait = ask_in_turn(units_for(step.provider, group), ask_unit)
            if rest:
                log.info("confirmation: %s: no permit to spare (again in %s s); %d "
                         "target(s) wait for the next pass", step.label, wait, len(rest))
                left.extend(rest)
    return answers, left


def _due_again(every: float, interval: float) -> float:
    """How long ago a target must have been asked about to be asked again: `every`, less
    a quarter of the sweep's interval. A target is stamped a moment after its sweep
    started, and the next sweep starts one interval later give or take beat's and the
    queue's jitter; compared exactly, an `every` equal to the interval (the defaults)
    missed every other sweep, so an answer that was not ready at the first ask waited two
    intervals instead of one."""
    return max(0.0, every - interval / 4)


def sweep(send: Send, *, dsn: str | None = None, post_ids: list[str] | None = None) -> int:
    """One pass: ask, judge, write, settle; `send(post_id)` re-delivers a requeued post.
    Each provider's targets are taken apart (its own batch). With `post_ids`, only those,
    at once (the synchronous service). Returns the changes."""
    config = settings.current()
    now_only = post_ids is not None
    every = _due_again(config.results_every, config.results_interval)
    with connection(dsn) as conn:
        rows = []
        for provider in [None] if now_only else list(DISPLAY):
            rows += confirmations.take_awaiting(
                conn, settle_seconds=0 if now_only else config.results_settle,
                every_seconds=0 if now_only else every,
                revision_window=config.revision_window,
                revisit_seconds=config.revision_every, limit=config.results_batch,
                post_ids=post_ids, provider=provider)
        keys = ledger.user_keys(conn, list({r["user_id"] for r in rows})) if rows else {}
        stray = [] if now_only else confirmations.orphans(conn, config.results_batch)
    answers, left = ask(rows, keys) if rows else ({}, [])
    now = datetime.now(UTC)
    # Unasked rows are judged too (with no answer only the deadline can change them).
    changes = [c for r in rows
               if (c := judge(r, answers.get((str(r["post_id"]), r["platform"]), Answer(None)),
                              now, config.accepted_deadline)) is not None]
    if left:
        with connection(dsn) as conn:
            confirmations.give_back(conn, left)
    if not changes and not stray:
        return 0
    with connection(dsn) as conn, conn.transaction():
        written = write(conn, changes, now, stray)
    for post_id in written.requeued:  # after commit: a crash before leaves it queued
        send(post_id)
    return len(written.made)


@dataclass(frozen=True)
class Written:
    """What `write` did: the changes made, the posts to deliver again (after commit),
    and the posts left alone because a worker holds them (asked again later)."""

    made: list[dict[str, Any]]
    requeued: list[str]
    held: list[str]


def write(conn: Conn, changes: list[dict[str, Any]], now: datetime,
          stray: list[str] | tuple[str, ...] = ()) -> Written:
    """Write judged changes and settle the posts they touch (and `stray` ones), in the
    caller's transaction: the sweep's and the provider webhooks' one way to write. A post
    a worker holds is left alone (its targets change only once it is free)."""
    wanted = list({str(c["post_id"]) for c in changes})
    free = set(confirmations.lock_free(conn, wanted))
    made = confirmations.apply(conn, [c for c in changes if str(c["post_id"]) in free])
    requeued: list[str] = []
    finals = []
    touched = list({str(m["post_id"]) for m in made} | set(stray))
    for post in confirmations.posts_to_settle(conn, touched) if touched else []:
        verdict = settle(post, now)
        if verdict is None:
            continue
        kind, value = verdict
        if kind == "requeue" and confirmations.requeue(conn, post["id"], value):
            requeued.append(str(post["id"]))
        elif kind == "finish":
            finals.append((post["id"], value, post["status"] != "publishing"))
    confirmations.finish_many(conn, finals)
    return Written(made, requeued, [p for p in wanted if p not in free])


def confirm_within(post_id: str, seconds: float, send: Send, *, dsn: str | None = None,
                   every: float = 0.5) -> str | None:
    """Ask about one post until it is no longer waiting for answers, or `seconds` pass;
    its status then (the synchronous service's wait for the platforms)."""
    from db import posts

    deadline = time.monotonic() + max(0.0, seconds)
    while True:
        sweep(send, dsn=dsn, post_ids=[post_id])
        with connection(dsn) as conn:
            status = posts.status_of(conn, post_id)
        if status != "publishing" or time.monotonic() + every > deadline:
            return status
        time.sleep(every)
