"""Waiting for posts to become final, by polling the ledger (PostgreSQL is the truth;
Celery results only say a message was accepted).

A post has no row until a worker accepts its message, so "not there yet" is normal for a
while; if it lasts, the operator is told that no worker seems to be running.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import click

from worker.commands.common import Interrupted, db_connection, note

POLL_SECONDS = 0.5
NO_WORKER_HINT_AFTER = 15.0  # seconds without any row before suggesting a worker is down

Posts = dict[str, dict[str, Any] | None]


def final_statuses() -> frozenset[str]:
    from db.states import FINAL

    return FINAL


def _fetch_posts(conn: Any, ids: Sequence[str], campaign: tuple[str, str] | None) -> Posts:
    """Current rows of `ids` (None while not accepted). A campaign's posts are read page by
    page through its history, not one query per post."""
    from db import posts

    found: Posts = dict.fromkeys(ids)
    if campaign is None:
        for pid in ids:
            found[pid] = posts.get_post(conn, pid)
        return found
    user_id, campaign_id = campaign
    before = None
    while True:
        page = posts.get_post_history(
            conn, user_id, limit=1000, campaign_id=campaign_id, before=before
        )
        for row in page:
            key = str(row["id"])
            if key in found:
                found[key] = row
        if len(page) < 1000:
            return found
        before = page[-1]["cursor"]


def wait_final(
    ids: Sequence[str],
    *,
    timeout: float | None,
    campaign: tuple[str, str] | None = None,
    on_poll: Callable[[Posts], None] | None = None,
) -> Posts:
    """Poll until every post in `ids` is final; returns their rows.

    `timeout` None waits without limit. On timeout or Ctrl-C a one-line ClickException says
    the posts carry on without us."""
    final = final_statuses()
    keys = [str(uuid.UUID(str(i))) for i in ids]
    start = time.monotonic()
    hinted = False
    try:
        with db_connection() as conn:
            while True:
                rows = _fetch_posts(conn, keys, campaign)
                if on_poll is not None:
                    on_poll(rows)
                if all(r is not None and r["status"] in final for r in rows.values()):
                    return rows
                waited = time.monotonic() - start
                if not hinted and waited > NO_WORKER_HINT_AFTER and all(
                    r is None for r in rows.values()
                ):
                    note("no worker has accepted the post(s) yet: is `socialpost worker` running?")
                    hinted = True
                if timeout is not None and waited >= timeout:
                    raise click.ClickException(
                        f"gave up waiting after {timeout:g} s ({_pending(rows, final)}); "
                        "publishing carries on: see `socialpost show` or `socialpost history`"
                    )
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise Interrupted(
            "stopped waiting; publishing carries on: see `socialpost show` or `socialpost history`"
        ) from None


def _pending(rows: Posts, final: frozenset[str]) -> str:
    unseen = sum(1 for r in rows.values() if r is None)
    open_ = sum(1 for r in rows.values() if r is not None and r["status"] not in final)
    parts = []
    if open_:
        parts.append(f"{open_} not final")
    if unseen:
        parts.append(f"{unseen} not yet accepted by a worker")
    return ", ".join(parts) or "all final"


def count_final(rows: Posts) -> int:
    final = final_statuses()
    return sum(1 for r in rows.values() if r is not None and r["status"] in final)
