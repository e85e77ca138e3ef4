"""`/v1/webhooks` (admin tokens only): the outcome-event endpoints of db/webhooks.py, the
same store as `socialpost webhooks`. A new endpoint's signing secret is in the creation
answer, once; only its encrypted form is kept, and no other answer holds it."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Admin
from api.models import Strict
from api.problems import AUTHED, invalid, not_found, responses
from db import webhooks
from db.errors import InvalidInput
from db.pool import connection

router = APIRouter(tags=["webhooks"])


class WebhookIn(Strict):
    url: str = Field(description="an http(s) URL on a public address")
    user_id: str | None = Field(None, description="only this user's events; absent: every "
                                "user's")
    event_types: list[str] | None = Field(
        None, max_length=50, description="event types or globs (`post.*`, "
        "`post.target.*`); absent: every post event")


class Webhook(BaseModel):
    id: uuid.UUID
    url: str
    user_id: uuid.UUID | None = None
    event_types: list[str] | None = None
    created_at: datetime
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


class NewWebhook(Webhook):
    secret: str = Field(description="the signing secret (`whsec_…`), shown only now")


class WebhookList(BaseModel):
    data: list[Webhook]


class PingSent(BaseModel):
    event_id: uuid.UUID = Field(description="the `ping` event's id (its webhook-id)")


def _of(row: dict[str, object]) -> Webhook:
    return Webhook.model_validate({k: row.get(k) for k in Webhook.model_fields})


@router.post("/webhooks", status_code=201, response_model=NewWebhook,
             summary="Add a webhook endpoint", responses=responses(*AUTHED, 403, 413))
def create_webhook(body: WebhookIn, _: Admin) -> JSONResponse:
    try:
        with connection() as conn:
            row, secret = webhooks.create_endpoint(conn, body.url, user_id=body.user_id,
                                                   event_types=body.event_types)
    except InvalidInput as exc:
        raise invalid([f"{exc.field}: {exc.rule}"]) from None
    made = NewWebhook(**_of(row).model_dump(), secret=secret)
    return JSONResponse(made.model_dump(mode="json"), status_code=201,
                        headers={"Location": f"/v1/webhooks/{made.id}",
                                 "Cache-Control": "no-store"})


@router.get("/webhooks", response_model=WebhookList, summary="The webhook endpoints",
            responses=responses(*AUTHED, 403))
def list_webhooks(_: Admin) -> WebhookList:
    with connection() as conn:
        return WebhookList(data=[_of(r) for r in webhooks.list_endpoints(conn)])


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove an endpoint",
               responses=responses(*AUTHED, 403, 404, 413))
def remove_webhook(webhook_id: uuid.UUID, _: Admin) -> Response:
    with connection() as conn:
        if not webhooks.remove_endpoint(conn, webhook_id):
            raise not_found(f"webhook endpoint {webhook_id}")
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/test", status_code=202, response_model=PingSent,
             summary="Send the endpoint a signed `ping`",
             responses=responses(*AUTHED, 403, 404, 413))
def test_webhook(webhook_id: uuid.UUID, _: Admin) -> PingSent:
    """The ping goes out with the next dispatcher pass; its attempts are in the delivery
    log (`socialpost webhooks deliveries --endpoint ID`)."""
    from tasks.dispatch import ping

    with connection() as conn:
        if webhooks.get_endpoint(conn, webhook_id) is None:
            raise not_found(f"webhook endpoint {webhook_id}")
    return PingSent(event_id=uuid.UUID(ping(webhook_id)))
