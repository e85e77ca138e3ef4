"""A fake PostForMe (https://api.postforme.dev/v1), mounted under /postforme/v1.

Faithful where our clients depend on it: 201 creates with the post as the body,
asynchronous status (`processing`, results one per account), lookup by `external_id`
(its only idempotency handle), delete only for scheduled/draft, NestJS-style errors.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

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
from providers.sandbox.media import EXTENSION_FOR_TYPE
from providers.sandbox.state import Account, KeyEntry
from providers.sandbox.wire import (
    Request,
    Response,
    format_seconds,
    iso,
    json_response,
    parse_when,
)

PREFIX = "/postforme/v1"
MAX_LIMIT = 100
DEFAULT_LIMIT = 50

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error(status: int, message: str, errors: list[str] | None = None) -> Response:
    """NestJS-shaped error; 400s list their field errors."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status == 400:
        body["errors"] = errors if errors is not None else [message]
    body["error"] = _REASONS.get(status, "Error")
    return json_response(status, body)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "platform": "x" if account.platform == "twitter" else account.platform,
        "username": account.username,
        "user_id": f"uid_{account.id[4:16]}",
        "status": "connected",
        "external_id": None,
        "profile_photo_url": None,
        "access_token_expires_at": None,
        "metadata": {},
    }


@dataclass
class Post:
    id: str
    key: str
    caption: str
    accounts: list[Account]
    media: list[dict[str, Any]]
    scheduled_at: float | None
    external_id: str | None
    platform_configurations: dict[str, Any] | None
    created_at: float
    updated_at: float
    status: str  # draft | scheduled | processing | processed
    results: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, status: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": status or self.status,
            "external_id": self.external_id,
            "caption": self.caption,
            "social_accounts": [account_json(a) for a in self.accounts],
            "media": self.media,
            "scheduled_at": None if self.scheduled_at is None else iso(self.scheduled_at),
            "platform_configurations": self.platform_configurations,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class PostForMeApi(ProviderApi):
    name = "postforme"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._lock = threading.Lock()
        self._posts: dict[str, Post] = {}
        self._by_key: dict[str, list[str]] = {}
        self._by_external: dict[tuple[str, str], list[str]] = {}

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()
            self._by_key.clear()
            self._by_external.clear()

    def created_targets(self) -> list[tuple[str | None, str]]:
        """(external_id, platform) of every post held, one per connected account."""
        with self._lock:
            return [(p.external_id, a.platform) for p in self._posts.values() for a in p.accounts]

    # -- errors the shared flow asks for ---------------------------------------------
    def unauthorized(self, req: Request) -> Response:
        return error(401, "Invalid or missing API key")

    def fault_error(self, req: Request, decision: Decision) -> Response:
        if decision.body is not None:
            return json_response(decision.status, decision.body)
        if decision.status == 401:
            return self.unauthorized(req)
        reason = _REASONS.get(decision.status, "Error")
        return error(decision.status, decision.message or f"{reason} (sandbox fault)")

    def rate_limited(self, req: Request, decision: Decision) -> Response:
        resp = (
            json_response(429, decision.body)
            if decision.body is not None
            else error(429, decision.message or "ThrottlerException: Too Many Requests")
        )
        wait = format_seconds(decision.retry_after)
        resp.headers += [
            ("Retry-After", wait),
            ("X-Rate-Limit-Limit", "5"),
            ("X-Rate-Limit-Remaining", "0"),
            ("X-Rate-Limit-Reset", wait),
        ]
        return resp

    # -- routing ---------------------------------------------------------------------
    def route(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        parts = [p for p in req.path.split("/") if p]
        method = req.method
        try:
            if parts == ["social-posts"]:
                if method == "POST":
                    return self.create(req, key, spec, self._create)
                if method == "GET":
                    return self._list(req, key, spec)
            elif len(parts) == 2 and parts[0] == "social-posts":
                if method == "GET":
                    return self._get(key, parts[1], spec)
                if method == "DELETE":
                    return self._delete(key, parts[1], spec)
            elif parts == ["social-post-results"] and method == "GET":
                return self._results(req, key, spec)
            elif len(parts) == 2 and parts[0] == "social-post-results" and method == "GET":
                return self._result(key, parts[1], spec)
            elif parts == ["social-accounts"] and method == "GET":
                return self._accounts(req, key, spec)
            elif len(parts) == 2 and parts == ["social-accounts", "auth-url"] and method == "POST":
                return self._auth_url(req, spec)
            elif len(parts) == 2 and parts[0] == "social-accounts" and method == "GET":
                return self._account(key, parts[1], spec)
            elif parts == ["media", "create-upload-url"] and method == "POST":
                return self._upload_url(req)
        except ValueError as exc:  # BadJson, or a bad platform filter
            return error(400, str(exc))
        return error(404, f"Cannot {method} {PREFIX}{req.path}")

    # -- accounts and auth -------------------------------------------------------------
    def _accounts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        accounts = self.visible(key, spec)
        wanted = {canonical_platform(p) for p in req.args("platform") if p}
        if wanted:
            accounts = [a for a in accounts if a.platform in wanted]
        data = [account_json(a) for a in accounts]
        meta = {"total": len(data), "offset": 0, "limit": len(data), "next": None}
        return json_response(200, {"data": data, "meta": meta})

    def _account(self, key: KeyEntry, account_id: str, spec: FaultSpec) -> Response:
        for account in self.visible(key, spec):
            if account.id == account_id:
                return json_response(200, account_json(account))
        return error(404, f"Social account {account_id} not found")

    def _auth_url(self, req: Request, spec: FaultSpec) -> Response:
        body = req.json_object()
        try:
            platform = canonical_platform(str(body.get("platform") or ""))
        except ValueError as exc:
            return error(400, str(exc))
        state = new_token(8)
        redirect = body.get("redirect_url") or body.get("redirectUrl") or ""
        url = f"{req.base_url}/_sandbox/oauth/{platform}?" + urlencode(
            {"state": state, "redirect_url": redirect}
        )
        if spec.seed_shapes:
            return json_response(200, {"data": {"auth_url": url}})
        name = "x" if platform == "twitter" else platform
        return json_response(201, {"url": url, "platform": name})

    def _upload_url(self, req: Request) -> Response:
        body = req.json_object()
        declared = body.get("content_type") or body.get("contentType")
        declared = str(declared).lower() if declared else None
        extension = EXTENSION_FOR_TYPE.get(declared or "", "")
        upload, public = media_upload_urls(req.base_url, extension, declared, self.ctx.media)
        return json_response(201, {"upload_url": upload, "media_url": public})

    # -- posts -------------------------------------------------------------------------
    def _create(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        body = req.json_object()
        errors: list[str] = []
        caption = body.get("caption")
        if not isinstance(caption, str):
            errors.append("caption must be a string")
        raw_accounts = body.get("social_accounts")
        accounts: list[Account] = []
        if not isinstance(raw_accounts, list) or not raw_accounts:
            errors.append("social_accounts must be a non-empty array of account ids")
        else:
            by_id = {a.id: a for a in self.visible(key, spec)}
            for account_id in raw_accounts:
                account = by_id.get(account_id) if isinstance(account_id, str) else None
                if account is None:
                    errors.append(f"social account {account_id} not found")
                elif account not in accounts:
                    accounts.append(account)
        media = body.get("media") or []
        if not isinstance(media, list) or not all(
            isinstance(m, dict) and isinstance(m.get("url"), str) and m["url"] for m in media
        ):
            errors.append("media must be an array of objects with a url")
            media = []
        scheduled_at: float | None = None
        if body.get("scheduled_at") is not None:
            try:
                scheduled_at = parse_when(body["scheduled_at"])
            except ValueError:
                errors.append("scheduled_at must be a valid ISO 8601 date string")
        external_id = body.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            errors.append("external_id must be a string")
        configs = body.get("platform_configurations")
        if configs is not None and not isinstance(configs, dict):
            errors.append("platform_configurations must be an object")
        if errors:
            return error(400, "Validation failed", errors)

        now = time.time()
        if body.get("is_draft") is True:
            status = "draft"
        elif scheduled_at is not None and scheduled_at > now:
            status = "scheduled"
        else:
            status = "processing"
        post = Post(
            id=f"sp_{new_token()}",
            key=key.key,
            caption=str(caption),
            accounts=accounts,
            media=[{"url": m["url"], "thumbnail_url": m.get("thumbnail_url")} for m in media],
            scheduled_at=scheduled_at,
            external_id=external_id,
            platform_configurations=configs,
            created_at=now,
            updated_at=now,
            status=status,
        )
        if status == "processing":
            self._publish(post, spec)
        with self._lock:
            self._posts[post.id] = post
            self._by_key.setdefault(key.key, []).append(post.id)
            if external_id:
                self._by_external.setdefault((key.key, external_id), []).append(post.id)
        self.ctx.recorder.created(self.name, external_id)
        log = {"external_id": external_id, "post_id": post.id}
        if spec.seed_shapes:
            resp = json_response(200, {"data": post.to_json(status)})
        else:
            resp = json_response(201, post.to_json(status))
        resp.log = log
        return resp

    def _publish(self, post: Post, spec: FaultSpec) -> None:
        """Processing finishes at once: one result per account, the post is processed."""
        media: list[tuple[str, str | None]] = [(m["url"], None) for m in post.media]
        now = time.time()
        for account in post.accounts:
            problem = target_error(account.platform, media, self.ctx, spec)
            ppid = None if problem else platform_post_id()
            post.results.append(
                {
                    "id": f"spr_{new_token()}",
                    "post_id": post.id,
                    "social_account_id": account.id,
                    "platform": "x" if account.platform == "twitter" else account.platform,
                    "success": problem is None,
                    "error": problem,
                    "details": {},
                    "platform_data": {
                        "id": ppid,
                        "url": ppid and platform_post_url(account.platform, account.username, ppid),
                    },
                    "created_at": iso(now),
                }
            )
        post.status = "processed"
        post.updated_at = now

    def _settle(self, post: Post, spec: FaultSpec) -> None:
        """A scheduled post whose time has come gets published when someone looks."""
        due = post.scheduled_at is not None and post.scheduled_at <= time.time()
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
            return error(404, f"Social post {post_id} not found")
        return json_response(200, body)

    def _delete(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            post = self._owned(key, post_id, spec)
            if post is None:
                return error(404, f"Social post {post_id} not found")
            if post.status not in ("scheduled", "draft"):
                return error(400, f"Cannot delete a post with status {post.status}")
            del self._posts[post_id]
            self._by_key[key.key].remove(post_id)
            if post.external_id:
                self._by_external[(key.key, post.external_id)].remove(post_id)
        return json_response(200, {"success": True})

    def _page(self, req: Request) -> tuple[int, int] | Response:
        try:
            offset = int(req.arg("offset") or 0)
            limit = int(req.arg("limit") or DEFAULT_LIMIT)
        except ValueError:
            return error(400, "offset and limit must be integers")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            return error(400, f"offset must be >= 0 and limit between 1 and {MAX_LIMIT}")
        return offset, limit

    def _meta(self, req: Request, total: int, offset: int, limit: int) -> dict[str, Any]:
        following = None
        if offset + limit < total:
            query = [(k, v) for k, vs in req.query.items() if k != "offset" for v in vs]
            query.append(("offset", str(offset + limit)))
            following = f"{req.base_url}{req.full_path}?{urlencode(query)}"
        return {"total": total, "offset": offset, "limit": limit, "next": following}

    def _list(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        page = self._page(req)
        if isinstance(page, Response):
            return page
        offset, limit = page
        external_ids = req.args("external_id")
        statuses = set(req.args("status"))
        platforms = {canonical_platform(p) for p in req.args("platform") if p}
        with self._lock:
            if external_ids:
                ids = [
                    pid
                    for ext in dict.fromkeys(external_ids)
                    for pid in self._by_external.get((key.key, ext), [])
                ]
                ids.sort(key=lambda pid: self._posts[pid].created_at)
            else:
                ids = list(self._by_key.get(key.key, []))
            posts = [self._posts[pid] for pid in reversed(ids)]
            for post in posts:
                self._settle(post, spec)
            if statuses:
                posts = [p for p in posts if p.status in statuses]
            if platforms:
                posts = [p for p in posts if any(a.platform in platforms for a in p.accounts)]
            data = [p.to_json() for p in posts[offset : offset + limit]]
        resp = json_response(
            200, {"data": data, "meta": self._meta(req, len(posts), offset, limit)}
        )
        if external_ids:
            resp.log = {"external_id": external_ids[0]}
        return resp

    def _results(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        page = self._page(req)
        if isinstance(page, Response):
            return page
        offset, limit = page
        post_ids = req.args("post_id")
        account_ids = set(req.args("social_account_id"))
        with self._lock:
            if post_ids:
                posts = [p for p in (self._owned(key, pid, spec) for pid in post_ids) if p]
            else:
                posts = [self._posts[pid] for pid in reversed(self._by_key.get(key.key, []))]
                for post in posts:
                    self._settle(post, spec)
            results = [r for p in posts for r in p.results]
        if account_ids:
            results = [r for r in results if r["social_account_id"] in account_ids]
        data = results[offset : offset + limit]
        resp = json_response(
            200, {"data": data, "meta": self._meta(req, len(results), offset, limit)}
        )
        if post_ids:
            resp.log = {"post_id": post_ids[0]}
        return resp

    def _result(self, key: KeyEntry, result_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            for pid in self._by_key.get(key.key, []):
                for result in self._posts[pid].results:
                    if result["id"] == result_id:
                        return json_response(200, result)
        return error(404, f"Social post result {result_id} not found")
