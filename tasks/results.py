"""Per-platform ids for posts PostForMe accepted: its create answer carries only its own
post id; the platform ids and urls arrive later on its results endpoint.

The post is already final (accepted counts as posted); this only fills in where it went.
Beat runs `sweep` every few seconds, asking for up to 100 results per HTTP call, so the
publishing path never waits on it and pays nothing per post. `collect` does one post at
once, for the synchronous seed service.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import settings
from db import delivery as ledger
from db import results as known
from db.pool import connection
from providers.errors import ProviderCallError
from providers.outcomes import TargetResult
from providers.protocols import ResultsFetcher
from tasks.chain import Step, build_chain

log = logging.getLogger("socialpost.results")
PAGE = 100  # the results endpoint's page size: one page per call


def _rows_for(
    results: dict[str, TargetResult], targets: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    found = []
    for t in targets:
        result = results.get(t["platform"])
        if result is None or (result.platform_post_id is None and result.success is None):
            continue  # still processing
        refused = result.success is False
        found.append(
            {
                "platform": t["platform"],
                "id": result.platform_post_id,
                "url": result.platform_post_url,
                "error": f"refused by the platform after acceptance: {result.error or 'no reason'}"
                if refused
                else None,
            }
        )
    return found


def _step_for(chain: list[Step], provider: str, source: str) -> Step | None:
    return next((s for s in chain if s.provider == provider and s.source == source), None)


def collect(post_id: str, *, dsn: str | None = None) -> bool:
    """Fetch and store one post's missing platform ids; False when some are not there yet."""
    from tasks.delivery import decrypt_keys, provider_for

    with connection(dsn) as conn:
        rows, encrypted = known.posted_without_ids(conn, post_id)
    if not rows:
        return True
    chain = build_chain(decrypt_keys(encrypted, post_id))
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["provider"], r["credential_source"], r["provider_post_id"])].append(r)
    complete = True
    for (provider, source, provider_post_id), targets in groups.items():
        step = _step_for(chain, provider, source)
        if step is None or provider != "postforme":
            continue
        try:
            results = provider_for(step).fetch_results(provider_post_id)
        except ProviderCallError as exc:
            log.info("post %s: results not readable yet: %s", post_id, exc.outcome.error)
            complete = False
            continue
        found = _rows_for(results, targets)
        complete = complete and len(found) == len(targets)
        if found:
            with connection(dsn) as conn:
                known.fill_results(conn, post_id, found)
    return complete


def collect_within(post_id: str, seconds: float, *, dsn: str | None = None,
                   every: float = 0.5) -> bool:
    """`collect` until every platform id is known or `seconds` pass (PostForMe tells them a
    moment after accepting); False when some are still missing (beat's sweep fills them)."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not collect(post_id, dsn=dsn):
        if time.monotonic() + every > deadline:
            log.info("post %s: platform ids not known yet; beat's sweep fills them", post_id)
            return False
        time.sleep(every)
    return True


def sweep(*, dsn: str | None = None) -> int:
    """One pass over targets awaiting their platform ids; returns how many were filled."""
    from tasks.delivery import client_for, decrypt_keys

    config = settings.current()
    with connection(dsn) as conn:
        rows = known.awaiting_ids(
            conn,
            settle_seconds=config.results_settle,
            window_seconds=config.results_window,
            limit=config.results_batch,
        )
        rows = [r for r in rows if r["provider"] == "postforme"]
        keys = ledger.user_keys(conn, list({r["user_id"] for r in rows}))
    # One client per (user, credential source); one call per page of targets.
    by_client: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_client[(str(r["user_id"]), r["credential_source"])].append(r)
    filled = 0
    for (user_id, source), targets in by_client.items():
        chain = build_chain(decrypt_keys(keys.get(user_id, {}), f"user {user_id}"))
        step = _step_for(chain, "postforme", source)
        if step is None:
            continue
        client: ResultsFetcher = client_for("postforme", step.api_key)
        for start in range(0, len(targets), PAGE):
            page = targets[start : start + PAGE]
            by_post: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for t in page:
                by_post[t["provider_post_id"]].append(t)
            try:
                results = client.fetch_results_many(list(by_post))
            except ProviderCallError as exc:
                log.info("results sweep: %s", exc.outcome.error)
                continue
            found = []
            for provider_post_id, post_targets in by_post.items():
                post_id = str(post_targets[0]["post_id"])
                found += [
                    {**row, "post_id": post_id}
                    for row in _rows_for(results.get(provider_post_id, {}), post_targets)
                ]
            if found:
                with connection(dsn) as conn:
                    filled += known.fill_results_many(conn, found)
    return filled
