"""`/v1/posts`: publish (through the producer client, the same code as every other
producer: the row is written before the message is sent), read one, list a user's in
keyset pages, cancel."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from api import idempotency
from api.auth import Principal, may_read, may_write, owned
from api.models import Accepted, Cancelled, Post, PostIn, PostPage, PostStatus
from api.problems import AUTHED, Problem, invalid, responses
from api.producer import client
from db import posts
from db.errors import InvalidInput
from db.pool import connection
from providers.platforms import normalize_platform
from tasks.validation import InvalidRequest, PostIdConflict, parse_uuid

router = APIRouter(tags=["posts"])
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, as Stripe's keys


@router.post("/posts", status_code=202, response_model=Accepted,
             summary="Publish a post, now or at scheduled_for",
             responses={**responses(*AUTHED, 403, 409, 413),
                        202: {"description": "Accepted: stored, and sent to the workers",
                              "headers": {"Location": {"schema": {"type": "string"}}}}})
def create_post(
    body: PostIn,
    token: Principal,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", pattern=KEY_PATTERN,
        description="a repeat with the same key and body answers the first answer; with "
                    "another body, 409")] = None,
) -> JSONResponse:
    user_id = parse_uuid("user_id", body.user_id, [], required=False)
    if user_id is not None:
        may_write(token, user_id)
    fields = body.model_dump(mode="json")
    if idempotency_key is None or user_id is None:
        return _accepted(_submit(fields))
    with connection() as conn:
        replay = idempotency.claim(conn, user_id, idempotency_key,
                                   idempotency.request_hash(fields))
    if replay is not None:
        status, answer = replay
        return _accepted(answer, status, replayed=True)
    if fields.get("post_id") is None:
        fields["post_id"] = str(idempotency.post_id_for(user_id, idempotency_key))
    try:
        answer = _submit(fields)
    except BaseException:
        with connection() as conn:
            idempotency.release(conn, user_id, idempotency_key)
        raise
    with connection() as conn:
        idempotency.store(conn, user_id, idempotency_key, 202, answer)
    return _accepted(answer)


def _submit(fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return client().submit_post(**fields)
    except PostIdConflict as exc:
        raise invalid(exc.problems, status=409) from None
    except InvalidRequest as exc:
        raise invalid(exc.problems) from None


def _accepted(answer: dict[str, Any], status: int = 202, replayed: bool = False
              ) -> JSONResponse:
    headers = {"Location": f"/v1/posts/{answer['post_id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(answer, status_code=status, headers=headers)


def _visible(post_id: uuid.UUID, token: Any) -> dict[str, Any]:
    with connection() as conn:
        return owned(token, posts.get_post(conn, post_id), f"post {post_id}")


@router.get("/posts/{post_id}", response_model=Post, summary="One post",
            responses=responses(*AUTHED, 404))
def get_post(post_id: uuid.UUID, token: Principal) -> Post:
    """The post (the seed's columns), its platform targets, every provider attempt and its
    outcome events."""
    return Post.of(_visible(post_id, token))


@router.get("/posts", response_model=PostPage, summary="A user's posts, newest first",
            responses=responses(*AUTHED, 404))
def list_posts(
    token: Principal,
    user_id: uuid.UUID,
    status: PostStatus | None = None,
    campaign_id: uuid.UUID | None = None,
    platform: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200,
                                        description="next_cursor of the previous page")] = None,
) -> PostPage:
    """Keyset pages: stable while new posts arrive. `next_cursor` is null on the last."""
    may_read(token, user_id, f"user {user_id}")
    if platform is not None:
        name = normalize_platform(platform)
        if name is None:
            raise invalid([f"platform: unknown platform {platform!r}"])
        platform = name
    try:
        with connection() as conn:
            rows = posts.get_post_history(conn, user_id, limit + 1, status,
                                          campaign_id=campaign_id, platform=platform,
                                          before=_unwrap(cursor))
    except InvalidInput as exc:
        if exc.field == "before":
            raise invalid(["cursor: must be a next_cursor from a previous page"]) from None
        raise invalid([f"{exc.field}: {exc.rule}"]) from None
    more = len(rows) > limit
    rows = rows[:limit]
    return PostPage(data=[Post.of(r) for r in rows],
                    next_cursor=_wrap(posts.cursor_for(rows[-1])) if more else None)


def _wrap(cursor: str) -> str:
    """The ledger's keyset cursor as an opaque URL-safe token (its "+" and "|" would
    otherwise need escaping in a query string, and clients forget)."""
    return base64.urlsafe_b64encode(cursor.encode()).decode().rstrip("=")


def _unwrap(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise invalid(["cursor: must be a next_cursor from a previous page"]) from None


@router.post("/posts/{post_id}/cancel", response_model=Cancelled,
             summary="Cancel a scheduled or queued post",
             responses=responses(*AUTHED, 404, 409, 413))
def cancel_post(post_id: uuid.UUID, token: Principal) -> Cancelled:
    """Only a post nothing of which may be out: 409 says why when it is too late."""
    _visible(post_id, token)
    if client().cancel(str(post_id)):
        return Cancelled(post_id=post_id, status="cancelled")
    with connection() as conn:
        row = posts.get_post(conn, post_id)
    reason = posts.cancel_refusal(row) if row else "it no longer exists"
    raise Problem(409, "too-late", f"cannot cancel: {reason}", title="Too late to cancel")
