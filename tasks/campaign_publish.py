"""Publishing a whole campaign calendar in O(n): read it once, record every batch's post in
one transaction, send a delivery message only for the batches due now.

Why not one `social.publish_batch` message per batch: each such message makes the worker
read the calendar again to find its batch, so an n-batch calendar cost n reads of an
n-entry document (O(n²)), and each batch was validated twice (here with a stand-in
caption, then in the worker). Here each batch is validated once, with its real caption,
and its row is written before anything is sent:

    scheduled batch   row `scheduled`; beat's release sends it at its time (no message)
    due batch         row `queued`; one `social.deliver` message, marked in flight
    refused batch     row `failed` with the reason, as the worker would have recorded it
    repeat of a batch the row already there is kept (ids derive from the request), and a
    queued one is sent a delivery again: only one claim can win

If the broker refuses a message, the row is already `queued` in PostgreSQL and the
recovery sweep delivers it, so nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from db import campaigns, posts, states
from db.pool import connection, transaction
from providers.platforms import normalize_platforms
from tasks import inflight
from tasks.campaigns import overrides_for
from tasks.routing import has_late_key, unroutable
from tasks.validation import InvalidRequest, PostIdConflict, check_publish_input, max_past

log = logging.getLogger("socialpost.campaigns")

# Ids for campaign batches derive from (campaign, batch, platforms, words and media):
# re-running enqueue_campaign finds the posts it already made; an edited batch is new.
CAMPAIGN_NAMESPACE = uuid.UUID("2b0e6c1d-93f4-4a8e-b7d5-4c1e0f9a6b23")
DELIVER = "social.deliver"


@dataclass(frozen=True)
class Planned:
    """One calendar batch: its post id, its calendar time, whether it is sent, and the
    row it becomes (None when skipped as past)."""

    batch_number: int
    post_id: str
    scheduled_for: datetime | None
    new: posts.NewPost | None
    # refused for what may change (no LATE key yet): nothing stored, so publishing the
    # campaign again once it is fixed makes the post under the same id
    refused: str | None = None

    def row(self, error: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"batch_number": self.batch_number, "post_id": self.post_id,
                               "scheduled_for": self.scheduled_for, "sent": self.new is not None}
        if error or self.refused:
            out["error"] = error or self.refused
        return out


def post_id_for(cid: uuid.UUID, batch: campaigns.Batch, key: str) -> str:
    """The words and media are part of the id: an edited batch is a new post, while
    re-sending the same calendar repeats the same posts (and changes nothing)."""
    words: list[Any] = [batch.caption, list(batch.media_urls)]
    if batch.overrides:  # per-platform words too (absent: the ids stay as they were)
        words.append(batch.overrides)
    what = hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()[:16]
    return str(uuid.uuid5(CAMPAIGN_NAMESPACE, f"{cid}:{batch.batch_number}:{key}:{what}"))


def plan(
    cid: uuid.UUID,
    owner: uuid.UUID,
    batches: Sequence[campaigns.Batch],
    platforms: Sequence[str],
    *,
    skip_past: bool,
    now: datetime | None = None,
) -> list[Planned]:
    """What each batch becomes, validated once with its own caption and media. Bad
    platform names refuse the whole campaign (InvalidRequest) before anything is written."""
    try:
        names = normalize_platforms(list(platforms))
    except ValueError as exc:
        raise InvalidRequest([f"platforms: {exc}"]) from None
    key = ",".join(sorted(names))  # "x" and "twitter", or a repeated name: the same ids
    now = now or datetime.now(UTC)
    known: list[bool] = []  # whether the owner's chain has a LATE key, read once if asked

    def has_late() -> bool:
        if not known:
            with connection() as conn:
                known.append(has_late_key(conn, str(owner)))
        return known[0]

    grace = max_past()
    out = []
    for batch in batches:
        post_id = post_id_for(cid, batch, key)
        when = batch.scheduled_for
        if when is not None and now - when > grace and skip_past:
            out.append(Planned(batch.batch_number, post_id, when, None))
            continue
        # A batch whose time has come is sent as "now" (its calendar time may be further
        # back than max_past() when included on purpose).
        due = when is None or when <= now
        made = _new_post(owner, cid, batch, names, post_id, None if due else when, now)
        refused = "; ".join(unroutable(made.overrides, has_late)) if made.overrides else ""
        out.append(Planned(batch.batch_number, post_id, when, None, refused) if refused
                   else Planned(batch.batch_number, post_id, when, made))
    return out


def _new_post(owner: uuid.UUID, cid: uuid.UUID, batch: campaigns.Batch, names: list[str],
              post_id: str, when: datetime | None, now: datetime) -> posts.NewPost:
    from tasks.intake import new_post

    try:
        checked = check_publish_input(
            user_id=owner, content=batch.caption, platforms=names,
            media_urls=list(batch.media_urls), scheduled_for=when, campaign_id=cid,
            batch_number=batch.batch_number, post_id=post_id,
            overrides=overrides_for(batch, names), now=now)
    except InvalidRequest as exc:  # kept as a failed post, the reason named, as intake does
        return posts.NewPost(
            id=post_id, user_id=owner, content=batch.caption[:10_000],
            platforms=[], campaign_id=cid, batch_number=batch.batch_number,
            status=states.FAILED, error_message="; ".join(exc.problems))
    return new_post(checked, post_id)


def record(planned: Sequence[Planned], dsn: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Write every planned row in one transaction. Returns (post ids to deliver now: queued
    or, on a repeat, still publishing; refusals by post id). A post id already used by a
    different request refuses the whole campaign (InvalidRequest), and nothing is kept."""
    deliver: list[str] = []
    refused: dict[str, str] = {}
    with transaction(dsn) as conn:
        for item in planned:
            if item.new is None:
                continue
            row, created = posts.insert_post(conn, item.new)
            differs = [] if created else posts.request_differences(row, item.new)
            if differs:
                raise PostIdConflict([
                    f"post_id: {item.post_id} (batch {item.batch_number}) is already used by "
                    f"a different request ({', '.join(differs)} differ)"])
            if row["status"] in (states.QUEUED, states.PUBLISHING):
                deliver.append(item.post_id)
            elif row["status"] == states.FAILED and row.get("error_message"):
                refused[item.post_id] = str(row["error_message"])
    return deliver, refused


def send_deliveries(app: Celery, post_ids: Sequence[str]) -> int:
    """One `social.deliver` message per post, all marked in flight in one round trip
    first. Returns how many were sent; a post whose message failed stays queued in
    PostgreSQL for the recovery sweep (its marker is taken back)."""
    if not post_ids:
        return 0
    queue = app.amqp.router.route({}, DELIVER, (), {})["queue"].name
    planned = [(pid, str(uuid.uuid4())) for pid in post_ids]
    try:
        headers = inflight.mark([(pid, tid, queue, 0.0) for pid, tid in planned])
    except Exception as exc:  # sent unmarked: at worst the sweep sends one more copy
        log.warning("%d delivery message(s) sent without in-flight markers (%s)",
                    len(planned), type(exc).__name__)
        headers = [None] * len(planned)
    sent = 0
    with app.producer_or_acquire() as producer:  # one connection for the lot
        for i, ((pid, tid), header) in enumerate(zip(planned, headers, strict=True)):
            try:
                app.send_task(DELIVER, args=(pid,), task_id=tid, ignore_result=True,
                              producer=producer,
                              headers={inflight.HEADER: header} if header else None)
            except Exception as exc:
                inflight.unmark([(p, t) for p, t in planned[i:]])
                log.warning("%d post(s) recorded as queued; their delivery messages were not "
                            "sent (%s): the recovery sweep delivers them",
                            len(planned) - i, exc)
                break
            sent += 1
    return sent


def enqueue_campaign(app: Celery, campaign_id: uuid.UUID, platforms: Sequence[str], *,
                     skip_past: bool = True) -> list[dict[str, Any]]:
    """Read the calendar once, record each batch's post, deliver the due ones now."""
    from db.errors import NotFound

    try:
        with connection() as conn:
            owner, batches = campaigns.calendar(conn, campaign_id)
    except NotFound:
        raise InvalidRequest([f"campaign_id: no campaign {campaign_id}"]) from None
    planned = plan(campaign_id, owner, batches, platforms, skip_past=skip_past)
    due, refused = record(planned)
    send_deliveries(app, due)
    return [p.row(refused.get(p.post_id)) for p in planned]
