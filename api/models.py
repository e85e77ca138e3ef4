"""The API's request and response bodies. Requests refuse unknown fields (a typo such as
`scheduled_at` must not publish at once what was meant for later); the rules beyond
types are tasks.validation's, the same as every other way in. Responses are what the
OpenAPI document promises (schemathesis checks each answer against it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal["postforme", "late"]
PostStatus = Literal["scheduled", "queued", "publishing", "posted", "partial", "failed",
                     "unconfirmed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostIn(Strict):
    """A post to publish: now, or at `scheduled_for`."""

    user_id: str = Field(description="the user's UUID (must be one of the token's users)")
    content: str = Field(description="the text; each platform's limits are checked")
    platforms: list[str] = Field(description="twitter, linkedin, instagram, facebook, "
                                 "tiktok, threads, bluesky, youtube, pinterest")
    media_urls: list[str] | None = Field(None, description="public http(s) URLs")
    scheduled_for: str | None = Field(
        None, description="ISO 8601 with a UTC offset; null or absent: now")
    campaign_id: str | None = None
    batch_number: int | None = None
    post_id: str | None = Field(None, description="your UUID for the post (a repeat under "
                                "it changes nothing)")
    platform_options: dict[str, dict[str, Any]] | None = None
    account_ids: dict[str, str] | None = Field(
        None, description="platform -> the provider account id to post to")
    overrides: dict[str, dict[str, Any]] | None = Field(
        None, description="platform -> its own content, media_urls, first_comment, thread "
        "and options (README: per-platform content); unknown fields are refused by name")


class Accepted(BaseModel):
    post_id: uuid.UUID
    status: PostStatus


class Target(BaseModel):
    platform: str
    status: str
    provider: str | None = None
    credential_source: str | None = None
    provider_post_id: str | None = None
    platform_post_id: str | None = None
    platform_post_url: str | None = None
    error: str | None = None
    updated_at: datetime | None = None


class Attempt(BaseModel):
    id: int
    step: int | None = None
    provider: str | None = None
    credential_source: str | None = None
    platforms: list[str] | None = None
    http_status: int | None = None
    latency_ms: int | None = None
    outcome: str | None = None
    error: str | None = None
    provider_post_id: str | None = None
    created_at: datetime


class Event(BaseModel):
    """One outcome event of the post (the outbox: what webhooks and callbacks are sent)."""

    id: uuid.UUID
    type: str
    created_at: datetime
    dispatched_at: datetime | None = None
    status: str | None = None
    platform: str | None = None


class Post(BaseModel):
    """The seed's `social_posts` columns, with the platform targets and every attempt."""

    id: uuid.UUID
    user_id: uuid.UUID
    provider: str | None = None
    provider_post_id: str | None = None
    platforms: list[str] | None = None
    platform_post_ids: dict[str, Any] | None = None
    platform_post_urls: dict[str, Any] | None = None
    content: str | None = None
    media_urls: list[str] | None = None
    scheduled_for: datetime | None = None
    posted_at: datetime | None = None
    status: PostStatus
    error_message: str | None = None
    campaign_id: uuid.UUID | None = None
    batch_number: int | None = None
    created_at: datetime
    account_ids: dict[str, str] | None = None
    overrides: dict[str, Any] | None = None
    targets: list[Target]
    attempts: list[Attempt]
    events: list[Event] | None = Field(None, description="in `GET /v1/posts/{post_id}`: "
                                       "the post's outcome events, oldest first")

    @classmethod
    def of(cls, row: dict[str, Any]) -> Post:
        return cls.model_validate({k: row.get(k) for k in cls.model_fields})


class PostPage(BaseModel):
    data: list[Post]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; "
                                    "null on the last")


class Cancelled(BaseModel):
    post_id: uuid.UUID
    status: Literal["cancelled"]


class Batch(BaseModel):
    batch_number: int
    caption: str
    media_urls: list[str]
    scheduled_for: datetime | None = None
    overrides: dict[str, Any] | None = None


class CampaignIn(Strict):
    user_id: str
    name: str
    creative_calendar: dict[str, Any] = Field(
        description='{"batches": [{"caption", "media_urls", "scheduled_for", '
                    '"batch_number"?}]}')
    id: str | None = Field(None, description="choose the campaign's UUID")


class Campaign(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    created_at: datetime
    batches: list[Batch]
    posts: list[Post] | None = Field(None, description="the posts made from its batches "
                                     "(GET only)")


class PublishCampaignIn(Strict):
    platforms: list[str]
    include_past: bool = Field(False, description="also send batches whose time passed "
                               "more than SOCIALPOST_MAX_PAST_SECONDS ago (now)")


class BatchSent(BaseModel):
    batch_number: int
    post_id: uuid.UUID
    scheduled_for: datetime | None = None
    sent: bool = Field(description="a post was made for the batch (a refused one ends "
                       "`failed`: see `error`); false: skipped (its time is past) or "
                       "refused before anything was stored (see `error`)")
    error: str | None = Field(None, description="why the batch was refused, naming the "
                              "field and the rule")


class CampaignPublished(BaseModel):
    campaign_id: uuid.UUID
    batches: list[BatchSent]


class CredentialIn(Strict):
    api_key: str = Field(description="stored encrypted; never echoed", min_length=1,
                         max_length=1000)
    connected_platforms: list[str] | None = None


class Credential(BaseModel):
    """A stored credential: everything but the key."""

    user_id: uuid.UUID
    provider: Provider
    connected_platforms: list[str] | None = None
    updated_at: datetime | None = None
    invalid_at: datetime | None = None
    invalid_reason: str | None = None


class Account(BaseModel):
    platform: str
    username: str | None = None
    id: str
    profile_id: str | None = None
    provider: Provider
    source: Literal["user", "global"]
    owner: str


class AccountError(BaseModel):
    provider: Provider
    source: Literal["user", "global"]
    kind: str
    error: str


class Accounts(BaseModel):
    user_id: uuid.UUID
    accounts: list[Account]
    errors: list[AccountError] = Field(description="credentials that could not be listed")


class OAuthIn(Strict):
    platform: str
    redirect_url: str = Field(description="an http(s) URL the provider sends the user "
                              "back to")
    provider: Provider | None = Field(None, description="only this provider")
    source: Literal["user", "global"] | None = Field(None, description="only these keys")


class OAuthUrl(BaseModel):
    url: str
    provider: Provider
    source: Literal["user", "global"]
