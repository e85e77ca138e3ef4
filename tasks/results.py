"""Per-platform ids for posts PostForMe accepted: its create answer carries only its own
post id; the platform ids and urls arrive later on its results endpoint.

The post is already final (accepted counts as posted); this fills in where it went.
Run as its own task so the publishing path never waits on it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from db import delivery as ledger
from db.pool import connection
from providers.errors import ProviderCallError
from tasks.chain import build_chain

log = logging.getLogger("socialpost.results")


def collect(post_id: str, *, dsn: str | None = None) -> bool:
    """Fetch and store missing platform ids; False when some are not there yet."""
    from tasks.delivery import decrypt_keys, provider_for

    with connection(dsn) as conn:
        rows, encrypted = ledger.posted_without_ids(conn, post_id)
    if not rows:
        return True
    chain = build_chain(decrypt_keys(encrypted, post_id))
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for r in rows:
        groups[(r["provider"], r["credential_source"], r["provider_post_id"])].append(r["platform"])
    found: list[dict[str, Any]] = []
    complete = True
    for (provider, source, provider_post_id), platforms in groups.items():
        step = next((s for s in chain if s.provider == provider and s.source == source), None)
        if step is None:
            log.warning(
                "post %s: no %s %s key left to read results with", post_id, source, provider
            )
            continue
        try:
            results = provider_for(step).fetch_results(provider_post_id)
        except ProviderCallError as exc:
            log.info("post %s: results not readable yet: %s", post_id, exc.outcome.error)
            complete = False
            continue
        for platform in platforms:
            result = results.get(platform)
            if result is None or (result.platform_post_id is None and result.success is None):
                complete = False
                continue
            found.append(
                {
                    "platform": platform,
                    "id": result.platform_post_id,
                    "url": result.platform_post_url,
                    "error": None if result.success is not False else (result.error or "failed"),
                }
            )
    if found:
        with connection(dsn) as conn:
            ledger.fill_results(conn, post_id, found)
    return complete
