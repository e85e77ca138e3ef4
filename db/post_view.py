"""The one document a post is shown as: `socialpost show --json`, event payloads, the API.

`post_document` takes a post as `db.posts.get_post` returns it (datetimes, UUIDs, targets
and attempts) or as the outbox trigger snapshots it (to_jsonb: ISO strings already) and
returns the same JSON-ready dict either way, so a producer reading a webhook sees what
an operator sees. Worker bookkeeping (leases, claim counters) stays out: it is not the
post's story and changes under a producer's feet. It never holds a key: stored keys
live in user_social_credentials, which no post row reaches.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

# The seed's social_posts columns first (the contract), then what the ledger adds.
POST_FIELDS: tuple[str, ...] = (
    "id", "user_id", "provider", "provider_post_id", "platforms", "platform_post_ids",
    "platform_post_urls", "content", "media_urls", "scheduled_for", "posted_at", "status",
    "error_message", "campaign_id", "batch_number", "created_at",
    "platform_options", "account_ids", "notify_task", "notify_queue", "updated_at",
    "finished_at", "step",
)
TARGET_FIELDS: tuple[str, ...] = (
    "platform", "status", "provider", "credential_source", "provider_post_id",
    "platform_post_id", "platform_post_url", "error", "published_at", "accepted_at",
    "updated_at",
)
ATTEMPT_FIELDS: tuple[str, ...] = (
    "id", "step", "provider", "credential_source", "platforms", "idempotency_key",
    "http_status", "latency_ms", "outcome", "error", "provider_post_id", "created_at",
)
EVENT_FIELDS: tuple[str, ...] = ("id", "type", "created_at", "dispatched_at")


def plain(value: Any) -> Any:
    """`value` as JSON can hold it: ISO datetimes, str UUIDs, lists for tuples."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def _pick(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: plain(row.get(name)) for name in names if name in row}


def post_document(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready document of post `row`: `post_id` (and `id`, as stored), the seed
    columns, campaign and batch, targets in platform order, and attempts and events
    when the row carries them."""
    doc: dict[str, Any] = {"post_id": plain(row.get("id"))}
    doc.update(_pick(row, POST_FIELDS))
    doc["targets"] = [_pick(t, TARGET_FIELDS) for t in row.get("targets") or []]
    # get_post attaches the attempt log as `attempts` (a list); the column of that name
    # (a counter, in a trigger's snapshot) is bookkeeping and left out.
    if isinstance(row.get("attempts"), list):
        doc["attempts"] = [_pick(a, ATTEMPT_FIELDS) for a in row["attempts"]]
    if "events" in row:
        doc["events"] = [event_summary(e) for e in row.get("events") or []]
    if row.get("platform"):  # a target event: the platform it is about
        doc["platform"] = row["platform"]
    if row.get("cursor"):
        doc["cursor"] = row["cursor"]
    return doc


def event_summary(event: dict[str, Any]) -> dict[str, Any]:
    """An outbox event as a post's document lists it: id, type, when, and the status and
    platform its data carried (not the whole snapshot again)."""
    out = _pick(event, EVENT_FIELDS)
    data = event.get("data") or event  # a full event, or events_for_post's summary row
    out["status"] = data.get("status")
    if data.get("platform"):
        out["platform"] = data["platform"]
    return out
