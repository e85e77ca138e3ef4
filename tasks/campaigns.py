"""Storing a campaign: the calendar is checked batch by batch in the same transaction
(a missing caption, a naive time, a private media URL is refused now, not discovered
when the batch is due). Shared by `socialpost campaign create` and the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

from db import campaigns
from db.errors import InvalidInput
from db.pool import Conn
from providers.content import parse_overrides
from providers.media import check_media_url
from providers.platforms import normalize_platform
from tasks.validation import InvalidRequest, parse_uuid


def create_campaign(
    conn: Conn, user_id: object, name: object, calendar: object,
    campaign_id: object = None,
) -> tuple[uuid.UUID, list[campaigns.Batch]]:
    """Store the campaign and return (its id, its batches), or raise InvalidRequest
    naming every field at fault ("creative_calendar: batch 2: caption: ...")."""
    problems: list[str] = []
    uid = parse_uuid("user_id", user_id, problems, required=True)
    cid = parse_uuid("campaign_id", campaign_id, problems, required=False)
    if not isinstance(name, str) or not name.strip():
        problems.append("name: must be non-empty text")
    elif len(name) > 200:
        problems.append(f"name: at most 200 characters, got {len(name)}")
    if isinstance(calendar, list):  # a bare list of batches is accepted too
        calendar = {"batches": calendar}
    if not isinstance(calendar, dict):
        problems.append('creative_calendar: must be a JSON object {"batches": [...]}')
    if problems or uid is None:
        raise InvalidRequest(problems)
    assert isinstance(calendar, dict)
    try:
        with conn.transaction():  # leaving on an error rolls the campaign back
            new_id = campaigns.create_campaign(conn, uid, str(name), calendar, cid)
            batches = campaigns.list_batches(conn, new_id)
            bad = [f"creative_calendar: batch {b.batch_number}: media_urls[{i}]: {error}"
                   for b in batches for i, url in enumerate(b.media_urls)
                   if (error := check_media_url(url))]
            bad += _override_problems(batches)
            if bad:
                raise InvalidRequest(bad)
    except InvalidInput as exc:
        where = exc.field.split(" ", 2)[2] if exc.field.startswith("campaign ") else exc.field
        raise InvalidRequest([f"creative_calendar: {where}: {exc.rule}"]) from None
    return new_id, batches


def _override_problems(batches: list[campaigns.Batch]) -> list[str]:
    """Each batch's `overrides` checked by the schema (providers.content); the platforms'
    rules and required fields wait for the platforms, chosen when a batch is published."""
    problems: list[str] = []
    for batch in batches:
        found: list[str] = []
        parse_overrides(batch.overrides, [], found, check_media_url)
        problems.extend(f"creative_calendar: batch {batch.batch_number}: {p}" for p in found)
    return problems


def overrides_for(batch: campaigns.Batch, platforms: object) -> dict[str, Any] | None:
    """The calendar batch's overrides for the platforms it is published to: a calendar may
    carry words for platforms a given publish leaves out, and those are not this post's
    (checked as the post's own, they would refuse the whole batch)."""
    if not batch.overrides:
        return None
    chosen = {normalize_platform(p) for p in platforms} if isinstance(platforms, list) else set()
    kept = {k: v for k, v in batch.overrides.items() if normalize_platform(k) in chosen}
    return kept or None


def campaign_posts(conn: Conn, row: dict[str, Any]) -> list[dict[str, Any]]:
    """Every post made from campaign `row` (as get_campaign returns it), newest first."""
    from db import posts

    out: list[dict[str, Any]] = []
    before = None
    while True:
        page = posts.get_post_history(
            conn, row["user_id"], limit=1000, campaign_id=row["id"], before=before
        )
        out.extend(page)
        if len(page) < 1000:
            return out
        before = page[-1]["cursor"]
