"""`/v1/tokens` (admin tokens only): create a token (shown once, in the answer), list
them (never the tokens themselves), revoke one. The same store as `socialpost tokens`."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth import Admin
from api.models import Strict
from api.problems import AUTHED, invalid, not_found, responses
from db import tokens
from db.errors import InvalidInput
from db.pool import connection

router = APIRouter(tags=["tokens"])


class TokenIn(Strict):
    name: str = Field(description="what the token is for")
    user_ids: list[str] = Field(default_factory=list, max_length=1000,
                                description="the users a scoped token acts for")
    admin: bool = Field(False, description="act for every user; manage tokens and webhooks")


class TokenInfo(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="the token's first characters")
    admin: bool
    user_ids: list[uuid.UUID]
    created_at: datetime
    last_used_at: datetime | None = None

    @classmethod
    def of(cls, t: tokens.Token) -> TokenInfo:
        return cls(id=t.id, name=t.name, prefix=t.prefix, admin=t.admin,
                   user_ids=list(t.user_ids), created_at=t.created_at,
                   last_used_at=t.last_used_at)


class NewToken(TokenInfo):
    token: str = Field(description="shown only now: store it; only a digest is kept")


class TokenList(BaseModel):
    data: list[TokenInfo]


@router.post("/tokens", status_code=201, response_model=NewToken, summary="Create a token",
             responses=responses(*AUTHED, 403, 413))
def create_token(body: TokenIn, _: Admin) -> JSONResponse:
    try:
        with connection() as conn:
            record, token = tokens.create_token(conn, body.name, body.user_ids,
                                                admin=body.admin)
    except InvalidInput as exc:  # the store names the CLI's --user
        raise invalid([f"{'user_ids' if exc.field == 'user' else exc.field}: {exc.rule}"]
                      ) from None
    made = NewToken(**TokenInfo.of(record).model_dump(), token=token)
    return JSONResponse(made.model_dump(mode="json"), status_code=201,
                        headers={"Cache-Control": "no-store"})


@router.get("/tokens", response_model=TokenList, summary="The live tokens",
            responses=responses(*AUTHED, 403))
def list_tokens(_: Admin) -> TokenList:
    with connection() as conn:
        return TokenList(data=[TokenInfo.of(t) for t in tokens.list_tokens(conn)])


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token",
               responses=responses(*AUTHED, 403, 404, 413))
def revoke_token(token_id: uuid.UUID, _: Admin) -> Response:
    with connection() as conn:
        if tokens.revoke_token(conn, str(token_id)) is None:
            raise not_found(f"live token {token_id}")
    return Response(status_code=204)
