"""A fake LATE / Zernio (https://getlate.dev/api/v1), mounted under /late/api/v1.

Faithful where our clients depend on it: publishNow publishes inside the request,
scheduledFor schedules, neither makes a draft; `x-request-id` replays answer 200 with
the existing post; the same content to the same account inside the duplicate window
answers 409 with the existing post id; every answer carries X-Request-Id and
X-RateLimit-* headers.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from providers.sandbox.common import (
    Context,
    ProviderApi,
    media_upload_urls,
    new_token,
    platform_post_id,
    platform_post_url,
    target_error,
)
from providers.sandbox.faults import Decision, FaultSpec, canonical_platform
from providers.sandbox.media import EXTENSION_FOR_TYPE, VIDEO_EXTENSIONS
from providers.sandbox.state import Account, KeyEntry
from providers.sandbox.wire import Request, Response, format_seconds, iso, json_response

PREFIX = "/late/api/v1"
REQUEST_ID_TTL = 300.0
RATE_LIMIT = 1200
MAX_LIMIT = 100

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def error(status: int, message: str, **extra: Any) -> Response:
    """LATE's error body: {error, type, code, param?, platform?, details?}."""
    body: dict[str, Any] = {
        "error": message,
        "type": _TYPES.get(status, "api_error"),
        "code": status,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return json_response(status, body)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "_id": account.id,
        "platform": account.platform,
        "username": account.username,
        "displayName": account.username.replace("_", " ").title(),
        "profileId": account.profile_id,
        "isActive": True,
        "needsReconnection": False,
    }


@dataclass
class Post:
    id: str
    key: str
    content: str
    targets: list[dict[str, Any]]
    accounts: list[Account]
    media_items: list[dict[str, Any]]
    scheduled_for: float | None
    timezone: str
    status: str  # draft | scheduled | publishing | published | failed | partial | cancelled
    created_at: float
    updated_at: float
    published_at: float | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "content": self.content,
            "status": self.status,
            "platforms": [dict(t) for t in self.targets],
            "mediaItems": self.media_items,
            "scheduledFor": None if self.scheduled_for is None else iso(self.scheduled_for),
            "timezone": self.timezone,
            "publishedAt": None if self.published_at is None else iso(self.published_at),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


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


def _overall(targets: list[dict[str, Any]]) -> str:
    published = sum(1 for t in targets if t["status"] == "published")
    if published == len(targets):
        return "published"
    return "failed" if published == 0 else "partial"


class LateApi(ProviderApi):
    name = "late"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._posts: dict[str, Post] = {}
        self._by_key: dict[str, list[str]] = {}
        self._by_request_id: dict[tuple[str, str], tuple[str, float]] = {}
        self._by_content: dict[tuple[str, str], tuple[str, float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()
            self._by_key.clear()
            self._by_request_id.clear()
            self._by_content.clear()

    def created_targets(self) -> list[tuple[str | None, str]]:
        """(x-request-id, platform) of every post held, one per target account."""
        with self._lock:
            return [(p.request_id, a.platform) for p in self._posts.values() for a in p.accounts]

    # -- errors and headers ----------------------------------------------------------
    def unauthorized(self, req: Request) -> Response:
        return error(401, "Invalid API key")

    def fault_error(self, req: Request, decision: Decision) -> Response:
        if decision.body is not None:
            return json_response(decision.status, decision.body)
        if decision.status == 401:
            return self.unauthorized(req)
        if decision.status == 403:
            return error(403, decision.message or "Plan limit reached (sandbox fault)")
        return error(decision.status, decision.message or "Internal server error (sandbox fault)")

    def rate_limited(self, req: Request, decision: Decision) -> Response:
        resp = (
            json_response(429, decision.body)
            if decision.body is not None
            else error(
                429,
                decision.message or "Rate limit exceeded. Please retry later.",
                retryAfter=decision.retry_after,
            )
        )
        reset = math.ceil(time.time() + decision.retry_after)
        resp.headers += [
            ("Retry-After", format_seconds(decision.retry_after)),
            ("X-RateLimit-Limit", str(RATE_LIMIT)),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(reset)),
        ]
        return resp

    def finish(self, req: Request, resp: Response) -> Response:
        """Every LATE answer names its request and the rate-limit window."""
        request_id = req.headers.get("x-request-id")
        resp.headers.append(("X-Request-Id", request_id or f"req_{new_token(8)}"))
        if not any(name == "X-RateLimit-Limit" for name, _ in resp.headers):
            resp.headers += [
                ("X-RateLimit-Limit", str(RATE_LIMIT)),
                ("X-RateLimit-Remaining", str(RATE_LIMIT - 1)),
                ("X-RateLimit-Reset", str(math.ceil(time.time()) + 60)),
            ]
        return resp

    # -- routing ---------------------------------------------------------------------
    def route(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        parts = [p for p in req.path.split("/") if p]
        method = req.method
        try:
            if parts == ["posts"]:
                if method == "POST":
                    return self.create(req, key, spec, self._create)
                if method == "GET":
                    return self._list(req, key, spec)
            elif len(parts) == 2 and parts[0] == "posts":
                if method == "GET":
                    return self._get(key, parts[1], spec)
                if method == "DELETE":
                    return self._delete(key, parts[1], spec)
            elif len(parts) == 3 and parts[0] == "posts" and parts[2] == "retry":
                if method == "POST":
                    return self._retry(key, parts[1], spec)
            elif parts == ["accounts"] and method == "GET":
                return self._accounts(req, key, spec)
            elif parts == ["profiles"] and method == "GET":
                return self._profiles(key)
            elif len(parts) == 2 and parts[0] == "connect" and method == "GET":
                return self._connect(req, parts[1])
            elif parts == ["media", "presign"] and method == "POST":
                return self._presign(req)
        except ValueError as exc:  # BadJson, or a bad platform name
            return error(400, str(exc))
        return error(404, f"Route {method} {PREFIX}{req.path} not found")

    # -- accounts, profiles, OAuth, media ---------------------------------------------
    def _accounts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        accounts = self.visible(key, spec)
        profile = req.arg("profileId")
        if profile:
            accounts = [a for a in accounts if a.profile_id == profile]
        platform = req.arg("platform")
        if platform:
            accounts = [a for a in accounts if a.platform == canonical_platform(platform)]
        return json_response(200, {"accounts": [account_json(a) for a in accounts]})

    def _profiles(self, key: KeyEntry) -> Response:
        profile = {"_id": key.profile_id, "name": "Default", "isDefault": True}
        return json_response(200, {"profiles": [profile]})

    def _connect(self, req: Request, platform_name: str) -> Response:
        platform = canonical_platform(platform_name)
        state = new_token(8)
        query = {"state": state, "redirect_url": req.arg("redirect_url") or ""}
        if req.arg("profileId"):
            query["profileId"] = req.arg("profileId") or ""
        url = f"{req.base_url}/_sandbox/oauth/{platform}?{urlencode(query)}"
        return json_response(200, {"authUrl": url, "state": state})

    def _presign(self, req: Request) -> Response:
        body = req.json_object()
        filename = body.get("filename")
        content_type = body.get("contentType")
        if not isinstance(filename, str) or not filename or not isinstance(content_type, str):
            return error(400, "filename and contentType are required", param="filename")
        declared = content_type.lower()
        dot = filename.rfind(".")
        extension = filename[dot:] if dot > 0 else EXTENSION_FOR_TYPE.get(declared, "")
        upload, public = media_upload_urls(req.base_url, extension, declared, self.ctx.media)
        kind = "video" if declared.startswith("video/") else "image"
        return json_response(
            200,
            {
                "uploadUrl": upload,
                "publicUrl": public,
                "key": public.rsplit("/", 1)[-1],
                "type": kind,
            },
        )

    # -- posts -------------------------------------------------------------------------
    def _create(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
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
            targets=[
                {
                    "platform": a.platform,
                    "accountId": a.id,
                    "profileId": a.profile_id,
                    "status": "pending",
                    "platformPostId": None,
                    "platformPostUrl": None,
                    "errorMessage": None,
                    "publishedAt": None,
                }
                for a in accounts
            ],
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
            conflict = self._duplicate(post, now) if status != "draft" else None
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
        visible = {a.id: a for a in self.visible(key, spec)}
        accounts: list[Account] = []
        for target in raw_targets:
            if not isinstance(target, dict):
                return error(400, "each platform must be {platform, accountId}", param="platforms")
            try:
                platform = canonical_platform(str(target.get("platform") or ""))
            except ValueError as exc:
                return error(400, str(exc), param="platforms")
            account = visible.get(str(target.get("accountId") or ""))
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

    def _duplicate(self, post: Post, now: float) -> tuple[Account, str] | None:
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
        """Publish (or re-publish failed) targets now, as publishNow does in-request."""
        media = [(m["url"], m.get("type")) for m in post.media_items]
        now = time.time()
        by_id = {a.id: a for a in post.accounts}
        for target in post.targets:
            if only_failed and target["status"] != "failed":
                continue
            account = by_id[target["accountId"]]
            problem = target_error(account.platform, media, self.ctx, spec)
            if problem:
                target.update(
                    status="failed", errorMessage=problem, platformPostId=None, platformPostUrl=None
                )
            else:
                ppid = platform_post_id()
                target.update(
                    status="published",
                    errorMessage=None,
                    platformPostId=ppid,
                    platformPostUrl=platform_post_url(account.platform, account.username, ppid),
                    publishedAt=iso(now),
                )
        post.status = _overall(post.targets)
        post.updated_at = now
        if post.status != "failed":
            post.published_at = now

    def _settle(self, post: Post, spec: FaultSpec) -> None:
        due = post.scheduled_for is not None and post.scheduled_for <= time.time()
        if post.status == "scheduled" and due:
            self._publish(post, spec)

    def _owned(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Post | None:
        post = self._posts.get(post_id)
        if post is None or post.key != key.key:
            return None
        self._settle(post, spec)
        return post

    def _get(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            post = self._owned(key, post_id, spec)
            body = None if post is None else post.to_json()
        if body is None:
            return error(404, "Post not found")
        return json_response(200, {"post": body})

    def _delete(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            post = self._owned(key, post_id, spec)
            if post is None:
                return error(404, "Post not found")
            if post.status not in ("draft", "scheduled"):
                return error(400, f"Cannot delete a post with status {post.status}")
            del self._posts[post_id]
            self._by_key[key.key].remove(post_id)
        return json_response(200, {"message": "Post deleted successfully"})

    def _retry(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
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

    def _list(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
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
            posts = [self._posts[pid] for pid in reversed(self._by_key.get(key.key, []))]
            for post in posts:
                self._settle(post, spec)
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
