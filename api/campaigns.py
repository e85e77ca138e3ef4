"""`/v1/campaigns`: store a creative calendar (every batch checked), read it with the
posts made from it, publish every batch at its time (the client's campaign enqueue:
post ids derive from campaign, batch and platforms, so publishing twice repeats nothing)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

import psycopg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.auth import Principal, may_write, owned
from api.models import (
    Batch,
    BatchSent,
    Campaign,
    CampaignIn,
    CampaignPublished,
    Post,
    PublishCampaignIn,
)
from api.problems import AUTHED, Problem, responses
from api.producer import client
from db import campaigns
from db.pool import connection
from tasks.campaigns import campaign_posts, create_campaign
from tasks.validation import parse_uuid

router = APIRouter(tags=["campaigns"])


def _campaign(row: dict[str, Any], batches: list[campaigns.Batch],
              made: list[dict[str, Any]] | None = None) -> Campaign:
    return Campaign(id=row["id"], user_id=row["user_id"], name=row["name"],
                    created_at=row["created_at"],
                    batches=[Batch(**asdict(b)) for b in batches],
                    posts=None if made is None else [Post.of(p) for p in made])


@router.post("/campaigns", status_code=201, response_model=Campaign,
             summary="Store a campaign and its creative calendar",
             responses={**responses(*AUTHED, 403, 409, 413),
                        201: {"description": "Created",
                              "headers": {"Location": {"schema": {"type": "string"}}}}})
def post_campaign(body: CampaignIn, token: Principal) -> JSONResponse:
    """Every batch is checked now (caption, time with an offset, public media URLs)."""
    user_id = parse_uuid("user_id", body.user_id, [], required=False)
    if user_id is not None:
        may_write(token, user_id)
    try:
        with connection() as conn:
            cid, batches = create_campaign(conn, body.user_id, body.name,
                                           body.creative_calendar, body.id)
            row = campaigns.get_campaign(conn, cid)
    except psycopg.errors.UniqueViolation:
        raise Problem(409, "conflict", f"campaign {body.id} already exists",
                      errors=[("id", "already used")]) from None
    assert row is not None
    made = _campaign(row, batches)
    return JSONResponse(made.model_dump(mode="json", exclude={"posts"}), status_code=201,
                        headers={"Location": f"/v1/campaigns/{cid}"})


def _visible(campaign_id: uuid.UUID, token: Any) -> dict[str, Any]:
    with connection() as conn:
        return owned(token, campaigns.get_campaign(conn, campaign_id), f"campaign {campaign_id}")


@router.get("/campaigns/{campaign_id}", response_model=Campaign,
            summary="A campaign, its batches and the posts made from them",
            responses=responses(*AUTHED, 404))
def get_campaign(campaign_id: uuid.UUID, token: Principal) -> Campaign:
    row = _visible(campaign_id, token)
    with connection() as conn:
        batches = campaigns.list_batches(conn, campaign_id)
        made = campaign_posts(conn, row)
    return _campaign(row, batches, made)


@router.post("/campaigns/{campaign_id}/publish", status_code=202,
             response_model=CampaignPublished,
             summary="Enqueue every batch, each at its own time",
             responses=responses(*AUTHED, 404, 409, 413))
def publish_campaign(campaign_id: uuid.UUID, body: PublishCampaignIn, token: Principal
                     ) -> CampaignPublished:
    """Batches whose time passed more than SOCIALPOST_MAX_PAST_SECONDS ago are skipped
    (`sent` false) unless `include_past`. Publishing again repeats nothing."""
    _visible(campaign_id, token)
    rows = client().enqueue_campaign(str(campaign_id), body.platforms,
                                     skip_past=not body.include_past)
    return CampaignPublished(campaign_id=campaign_id,
                             batches=[BatchSent.model_validate(r) for r in rows])
