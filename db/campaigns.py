"""Campaigns and their creative calendars: {"batches": [{"caption", "media_urls",
"scheduled_for", ["batch_number"], ["overrides"]}, ...]}.

A batch's number is its own batch_number when it carries one, else its 1-based
position; publishers address batches by that number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from db import validate
from db.errors import BatchInvalid, BatchNotFound, CampaignNotFound, InvalidInput
from db.pool import Conn


@dataclass(frozen=True)
class Batch:
    """One calendar entry, checked: a caption, media URLs, an aware time or None."""

    batch_number: int
    caption: str
    media_urls: list[str] = field(default_factory=list)
    scheduled_for: datetime | None = None
    # per-platform content and options, as given; checked with the post at intake
    overrides: dict[str, Any] | None = None


def _check_calendar(calendar: object) -> dict[str, Any]:
    if not isinstance(calendar, dict):
        raise InvalidInput("creative_calendar", "must be a JSON object with a 'batches' list")
    batches = calendar.get("batches", [])
    if not isinstance(batches, list):
        raise InvalidInput("creative_calendar.batches", "must be a list")
    for i, b in enumerate(batches):
        if not isinstance(b, dict):
            raise InvalidInput(f"creative_calendar.batches[{i}]", "must be a JSON object")
    return {**calendar, "batches": batches}


def create_campaign(
    conn: Conn,
    user_id: uuid.UUID | str,
    name: str,
    creative_calendar: dict[str, Any] | None = None,
    campaign_id: uuid.UUID | str | None = None,
) -> uuid.UUID:
    """Insert a campaign and return its id (the given one, or a new one)."""
    uid = validate.as_uuid(user_id, "user_id")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name", "must be non-empty text")
    calendar = _check_calendar(creative_calendar if creative_calendar is not None else {})
    cid = validate.as_uuid(campaign_id, "campaign_id") if campaign_id is not None else uuid.uuid4()
    row = conn.execute(
        """INSERT INTO campaigns (id, user_id, name, creative_calendar)
           VALUES (%s, %s, %s, %s) RETURNING id""",
        (cid, uid, name.strip(), Jsonb(calendar)),
    ).fetchone()
    assert row is not None
    return uuid.UUID(str(row["id"]))


def update_calendar(
    conn: Conn, campaign_id: uuid.UUID | str, creative_calendar: dict[str, Any]
) -> None:
    """Replace a campaign's calendar."""
    cid = validate.as_uuid(campaign_id, "campaign_id")
    calendar = _check_calendar(creative_calendar)
    cur = conn.execute(
        "UPDATE campaigns SET creative_calendar = %s, updated_at = now() WHERE id = %s",
        (Jsonb(calendar), cid),
    )
    if cur.rowcount == 0:
        raise CampaignNotFound(f"campaign {cid} not found")


def get_campaign(conn: Conn, campaign_id: uuid.UUID | str) -> dict[str, Any] | None:
    """The campaign row, or None."""
    cid = validate.as_uuid(campaign_id, "campaign_id")
    return conn.execute("SELECT * FROM campaigns WHERE id = %s", (cid,)).fetchone()


def _number_of(raw: dict[str, Any], position: int, cid: uuid.UUID) -> int:
    if "batch_number" not in raw or raw["batch_number"] is None:
        return position
    value = raw["batch_number"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BatchInvalid(
            f"campaign {cid} batches[{position - 1}].batch_number",
            f"must be a positive integer, got {value!r}",
        )
    return value


def _parse_batch(raw: dict[str, Any], number: int, cid: uuid.UUID) -> Batch:
    where = f"campaign {cid} batch {number}"
    caption = raw.get("caption")
    if not isinstance(caption, str) or not caption.strip():
        raise BatchInvalid(f"{where}: caption", "missing or empty")
    media = raw.get("media_urls") or []
    try:
        media_urls = validate.str_list(media, "media_urls")
    except InvalidInput as exc:
        raise BatchInvalid(f"{where}: {exc.field}", exc.rule) from None
    try:
        when = validate.parse_aware(raw.get("scheduled_for"), "scheduled_for")
    except InvalidInput as exc:
        raise BatchInvalid(f"{where}: scheduled_for", exc.rule) from None
    overrides = raw.get("overrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise BatchInvalid(f"{where}: overrides", "must map platform names to objects")
    return Batch(batch_number=number, caption=caption, media_urls=media_urls, scheduled_for=when,
                 overrides=overrides or None)


def _read_calendar(
    conn: Conn, campaign_id: uuid.UUID | str
) -> tuple[uuid.UUID, uuid.UUID, list[Any]]:
    """(campaign id, owner, raw batches) in one read of the calendar."""
    cid = validate.as_uuid(campaign_id, "campaign_id")
    row = conn.execute(
        "SELECT user_id, creative_calendar -> 'batches' AS batches FROM campaigns WHERE id = %s",
        (cid,),
    ).fetchone()
    if row is None:
        raise CampaignNotFound(f"campaign {cid} not found")
    batches = row["batches"]
    owner = uuid.UUID(str(row["user_id"]))
    if batches is None:
        return cid, owner, []
    if not isinstance(batches, list):
        raise BatchInvalid(f"campaign {cid} creative_calendar.batches", "must be a list")
    return cid, owner, batches


# One batch without shipping the calendar to Python: PostgreSQL keeps only the entries
# that may answer to the number (the one at that position, and every entry whose own
# number is not a plain integer other than it), so `_pick` applies the same rules as
# list_batches to a handful of entries instead of parsing the whole calendar per batch.
_ONE_BATCH = r"""
SELECT c.user_id,
       jsonb_typeof(c.creative_calendar -> 'batches') AS kind,
       CASE jsonb_typeof(c.creative_calendar -> 'batches')
            WHEN 'array' THEN jsonb_array_length(c.creative_calendar -> 'batches') ELSE 0
       END AS total,
       CASE jsonb_typeof(c.creative_calendar -> 'batches') WHEN 'array' THEN (
           SELECT coalesce(jsonb_agg(jsonb_build_array(b.pos, b.raw) ORDER BY b.pos), '[]')
           FROM jsonb_array_elements(c.creative_calendar -> 'batches')
                WITH ORDINALITY AS b(raw, pos)
           WHERE b.pos = %(number)s
              OR (jsonb_typeof(b.raw) = 'object'
                  AND coalesce(jsonb_typeof(b.raw -> 'batch_number'), 'null') <> 'null'
                  AND NOT (jsonb_typeof(b.raw -> 'batch_number') = 'number'
                           AND (b.raw ->> 'batch_number') ~ '^[0-9]+$'
                           AND (b.raw ->> 'batch_number') <> %(text)s))
       ) END AS candidates
FROM campaigns c WHERE c.id = %(cid)s
"""


def batch_and_owner(
    conn: Conn, campaign_id: uuid.UUID | str, batch_number: int
) -> tuple[uuid.UUID, Batch]:
    """(the campaign's owner, batch `batch_number`) in one statement that sends back only
    the entries that may be that batch; errors as get_batch's."""
    number = validate.positive_int(batch_number, "batch_number")
    cid = validate.as_uuid(campaign_id, "campaign_id")
    row = conn.execute(_ONE_BATCH, {"cid": cid, "number": number, "text": str(number)}).fetchone()
    if row is None:
        raise CampaignNotFound(f"campaign {cid} not found")
    if row["kind"] not in (None, "array"):
        raise BatchInvalid(f"campaign {cid} creative_calendar.batches", "must be a list")
    candidates = [(int(pos), raw) for pos, raw in (row["candidates"] or [])]
    return uuid.UUID(str(row["user_id"])), _pick(cid, number, candidates, int(row["total"]))


def _pick(cid: uuid.UUID, number: int, entries: list[tuple[int, Any]], total: int) -> Batch:
    """Batch `number` among (position, raw entry) pairs, checked."""
    matches = []
    for pos, raw in entries:
        if not isinstance(raw, dict):
            if pos == number:
                raise BatchInvalid(f"campaign {cid} batch {number}", "must be a JSON object")
            continue
        if _number_of(raw, pos, cid) == number:
            matches.append(raw)
    if not matches:
        raise BatchNotFound(f"campaign {cid} has no batch {number} (it has {total} batches)")
    if len(matches) > 1:
        raise BatchInvalid(f"campaign {cid} batch {number}", "the number is used by two batches")
    return _parse_batch(matches[0], number, cid)


def get_batch(conn: Conn, campaign_id: uuid.UUID | str, batch_number: int) -> Batch:
    """Batch `batch_number` of the campaign; CampaignNotFound, BatchNotFound or
    BatchInvalid (no caption, malformed or naive scheduled_for) otherwise."""
    return batch_and_owner(conn, campaign_id, batch_number)[1]


def calendar(conn: Conn, campaign_id: uuid.UUID | str) -> tuple[uuid.UUID, list[Batch]]:
    """(the campaign's owner, every batch checked, in calendar order): one read of the
    calendar for a whole campaign (enqueue_campaign publishes n batches from it)."""
    cid, owner, batches = _read_calendar(conn, campaign_id)
    return owner, _checked(cid, batches)


def _checked(cid: uuid.UUID, batches: list[Any]) -> list[Batch]:
    out = []
    for pos, raw in enumerate(batches, start=1):
        if not isinstance(raw, dict):
            raise BatchInvalid(f"campaign {cid} batch {pos}", "must be a JSON object")
        out.append(_parse_batch(raw, _number_of(raw, pos, cid), cid))
    return out


def list_batches(conn: Conn, campaign_id: uuid.UUID | str) -> list[Batch]:
    """Every batch, checked, in calendar order."""
    cid, _, batches = _read_calendar(conn, campaign_id)
    return _checked(cid, batches)
