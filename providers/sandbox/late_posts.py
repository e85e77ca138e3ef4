"""The posts of the fake LATE: create (publishNow publishes in-request, scheduledFor
schedules, neither makes a draft), x-request-id replays, the duplicate-content 409,
get, delete, retry and list."""

from __future__ import annotations

import functools
import math
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.sandbox.common import Context, PostStore, new_token, visible
from providers.sandbox.faults import FaultSpec, canonical_platform
from providers.sandbox.late_custom import consent_error, with_custom
from providers.sandbox.late_publish import (
    Post,
    apply_due,
    new_target,
    publish,
    webhook_post,
    webhook_target,
)
from providers.sandbox.late_wire import error
from providers.sandbox.media import VIDEO_EXTENSIONS
from providers.sandbox.state import Account, KeyEntry
from providers.sandbox.wire import Request, Response, json_response

REQUEST_ID_TTL = 300.0
MAX_LIMIT = 100


def _when(value: Any, timezone: str) -> float:
    """scheduledFor as a Unix time: naive values are read in `timezone`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("scheduledFor must be an ISO 8601 date-time string")
    text = value.strip()
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        zone = UTC if timezone.upper() == "UTC" else ZoneInfo(timezone)
        parsed = parsed.replace(tzinfo=zone)
    return parsed.timestamp()


class LatePosts(PostStore[Post]):
    """LATE's posts, with its x-request-id and duplicate-content indexes."""

    name = "late"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._by_request_id: dict[tuple[str, str], tuple[str, float]] = {}
        self._by_content: dict[tuple[str, str], tuple[str, float]] = {}

    def _clear_indexes(self) -> None:
        self._by_request_id.clear()
        self._by_content.clear()

    def create(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        request_id = req.headers.get("x-request-id") or None
        now = time.time()
        if request_id:
            with self._lock:
                replay = self._replay(key, request_id, now)
            if replay is not None:
                return replay

        body_in = req.json_object()
        parsed = self._validate(body_in, key, spec)
        if isinstance(parsed, Response):
            return parsed
        content, accounts, media_items, scheduled_for, timezone = parsed
        refused = consent_error(body_in)
        if refused is not None:
            return refused
        publish_now = body_in.get("publishNow") is True
        if publish_now:
            status = "publishing"
        elif scheduled_for is not None:
            status = "scheduled"
        else:
            status = "draft"
        post = Post(
            id=new_token(12),
            key=key.key,
            content=content,
            targets=with_custom([new_target(a) for a in accounts], body_in),
            accounts=accounts,
            media_items=media_items,
            scheduled_for=scheduled_for,
            timezone=timezone,
            status=status,
            created_at=now,
            updated_at=now,
            request_id=request_id,
        )
        with self._lock:
            replay = self._replay(key, request_id, now) if request_id else None
            if replay is not None:  # a concurrent twin won the race
                return replay
            conflict = self._duplicate(post, now, spec) if status != "draft" else None
            if conflict is not None:
                account, existing = conflict
                return error(
                    409,
                    "This content was already posted to this account recently",
                    details={
                        "accountId": account.id,
                        "platform": account.platform,
                        "existingPostId": existing,
                    },
                )
            if publish_now:
                self._publish(post, spec)
            self._posts[post.id] = post
            self._by_key.setdefault(key.key, []).append(post.id)
            if request_id:
                self._by_request_id[(key.key, request_id)] = (post.id, now)
            if status != "draft":
                self._index_content(post, now)
            body = post.to_json()
        self.ctx.recorder.created(self.name, request_id)
        message = {
            "draft": "Post saved as draft",
            "scheduled": "Post scheduled successfully",
        }.get(post.status, "Post created successfully")
        resp = json_response(201, {"message": message, "post": body})
        resp.log = {"post_id": post.id}
        resp.stored = True
        return resp

    def _replay(self, key: KeyEntry, request_id: str, now: float) -> Response | None:
        """The answer to a repeated x-request-id (under lock), or None."""
        hit = self._by_request_id.get((key.key, request_id))
        if hit is None or now - hit[1] > REQUEST_ID_TTL:
            return None
        post = self._posts.get(hit[0])
        if post is None:
            return None
        resp = json_response(
            200, {"message": "Post already exists for this request id", "post": post.to_json()}
        )
        resp.log = {"post_id": post.id, "replayed": True}
        return resp

    def _validate(
        self, body: dict[str, Any], key: KeyEntry, spec: FaultSpec
    ) -> Response | tuple[str, list[Account], list[dict[str, Any]], float | None, str]:
        content = body.get("content", "")
        if content is None:
            content = ""
        if not isinstance(content, str):
            return error(400, "content must be a string", param="content")
        raw_media = body.get("mediaItems") or []
        if not isinstance(raw_media, list) or not all(
            isinstance(m, dict) and isinstance(m.get("url"), str) and m["url"] for m in raw_media
        ):
            return error(400, "mediaItems must be an array of {url, type}", param="mediaItems")
        if not content.strip() and not raw_media:
            return error(400, "content is required when there is no media", param="content")
        media_items = [
            {
                "url": m["url"],
                "type": m.get("type") or ("video" if _looks_video(m["url"]) else "image"),
            }
            for m in raw_media
        ]
        raw_targets = body.get("platforms")
        if not isinstance(raw_targets, list) or not raw_targets:
            return error(400, "platforms must be a non-empty array", param="platforms")
        visible_ids = {a.id: a for a in visible(key, spec)}
        accounts: list[Account] = []
        for target in raw_targets:
            if not isinstance(target, dict):
                return error(400, "each platform must be {platform, accountId}", param="platforms")
            try:
                platform = canonical_platform(str(target.get("platform") or ""))
            except ValueError as exc:
                return error(400, str(exc), param="platforms")
            account = visible_ids.get(str(target.get("accountId") or ""))
            if account is None or account.platform != platform:
                return error(
                    400,
                    f"Account {target.get('accountId')} not found for {platform}",
                    param="platforms",
                    platform=platform,
                )
            if account not in accounts:
                accounts.append(account)
        timezone = body.get("timezone") or "UTC"
        if not isinstance(timezone, str):
            return error(400, "timezone must be an IANA zone name", param="timezone")
        scheduled_for: float | None = None
        if body.get("scheduledFor") is not None:
            try:
                scheduled_for = _when(body["scheduledFor"], timezone)
            except (ValueError, ZoneInfoNotFoundError) as exc:
                return error(400, f"invalid scheduledFor/timezone: {exc}", param="scheduledFor")
        return content, accounts, media_items, scheduled_for, timezone

    def _duplicate(self, post: Post, now: float, spec: FaultSpec) -> tuple[Account, str] | None:
        """(account, existing post id) of the first target already holding this content."""
        if not post.content.strip():
            return None
        window = self.ctx.duplicate_window_seconds
        for account in post.accounts:
            hit = self._by_content.get((account.id, post.content))
            if hit is None or now - hit[1] > window:
                continue
            existing = self._posts.get(hit[0])
            if existing is None:
                continue
            self._settle(existing, spec)  # a pending target may have failed meanwhile
            if any(
                t["accountId"] == account.id and t["status"] != "failed" for t in existing.targets
            ):
                return account, existing.id
        return None

    def _index_content(self, post: Post, now: float) -> None:
        if post.content.strip():
            for target in post.targets:
                if target["status"] != "failed":
                    self._by_content[(target["accountId"], post.content)] = (post.id, now)

    def _publish(self, post: Post, spec: FaultSpec, only_failed: bool = False) -> None:
        """Publish (or re-publish failed) targets, as publishNow does in-request; a
        scheduled post publishes from its scheduled time."""
        start = time.time()
        if post.status == "scheduled" and post.scheduled_for is not None:
            start = min(start, post.scheduled_for)
        again = {t["accountId"] for t in post.targets
                 if not only_failed or t["status"] == "failed"}
        publish(self.ctx, spec, post, start, only_failed)
        self._plan_events(post, again, start)

    def _plan_events(self, post: Post, accounts: set[str], start: float) -> None:
        """One `post.platform.published|failed` event per target of `accounts` when it
        finishes: now for those that did, at their planned time for the rest (a later
        failure of a published one too: LATE's outcomes can regress)."""
        changes = [(start, t["accountId"], t["status"]) for t in post.targets
                   if t["accountId"] in accounts and t["status"] in ("published", "failed")]
        changes += [(at, account, fields["status"]) for at, account, fields in post.plans
                    if account in accounts]
        for at, account, status in changes:
            if status in ("published", "failed"):
                self.ctx.webhooks.emit(
                    self.name, post.key, f"post.platform.{status}", at,
                    functools.partial(self._event, post.id, account, status))

    def _event(self, post_id: str, account_id: str, status: str) -> dict[str, Any] | None:
        """The event's body as LATE's webhooks spell it (`id`, `publishedUrl`, `error`:
        not the REST names), from the post as it is now; None if the post is gone or the
        target is no longer `status` (a retry replaced it)."""
        with self._lock:
            post = self._posts.get(post_id)
            if post is None:
                return None
            apply_due(post, time.time())
            target = next((t for t in post.targets if t["accountId"] == account_id), None)
            if target is None or target["status"] != status:
                return None
            account = next(a for a in post.accounts if a.id == account_id)
            # the event's own platform block names it `name` (LATE's webhook schema)
            block = webhook_target(target)
            block["name"] = block.pop("platform")
            return {"post": webhook_post(post), "platform": block,
                    "account": {"id": account.id, "platform": account.platform,
                                "username": account.username}}

    def _settle(self, post: Post, spec: FaultSpec) -> None:
        super()._settle(post, spec)
        apply_due(post, time.time())

    def get(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        body = self._json_of(key, post_id, spec)
        if body is None:
            return error(404, "Post not found")
        return json_response(200, {"post": body})

    def delete(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            post = self._owned(key, post_id, spec)
            if post is None:
                return error(404, "Post not found")
            if post.status not in ("draft", "scheduled"):
                return error(400, f"Cannot delete a post with status {post.status}")
            del self._posts[post_id]
            self._by_key[key.key].remove(post_id)
        return json_response(200, {"message": "Post deleted successfully"})

    def retry(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            post = self._owned(key, post_id, spec)
            if post is None:
                return error(404, "Post not found")
            if not any(t["status"] == "failed" for t in post.targets):
                return error(400, "Post has no failed platforms to retry")
            self._publish(post, spec, only_failed=True)
            self._index_content(post, time.time())
            body = post.to_json()
        return json_response(200, {"message": "Retry completed", "post": body})

    def list_posts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        try:
            page = int(req.arg("page") or 1)
            limit = int(req.arg("limit") or 10)
        except ValueError:
            return error(400, "page and limit must be integers")
        if page < 1 or not 1 <= limit <= MAX_LIMIT:
            return error(400, f"page must be >= 1 and limit between 1 and {MAX_LIMIT}")
        status = req.arg("status")
        platform = req.arg("platform")
        wanted_platform = canonical_platform(platform) if platform else None
        with self._lock:
            posts = self._newest_first(self._by_key.get(key.key, []), spec)
            if status:
                posts = [p for p in posts if p.status == status]
            if wanted_platform:
                posts = [
                    p for p in posts if any(t["platform"] == wanted_platform for t in p.targets)
                ]
            total = len(posts)
            data = [p.to_json() for p in posts[(page - 1) * limit : page * limit]]
        pagination = {
            "page": page,
            "limit": limit,
            "total": total,
            "pages": math.ceil(total / limit),
        }
        return json_response(200, {"posts": data, "pagination": pagination})


def _looks_video(url: str) -> bool:
    return url.split("?", 1)[0].lower().endswith(VIDEO_EXTENSIONS)
