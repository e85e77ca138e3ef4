"""The posts of the fake PostForMe: create (201, the post as the body, `processing`),
asynchronous processing (results planned by postforme_results, visible when their
time comes; `processed` once all are), lookup by `external_id`, delete only while
scheduled or draft, and the paged lists of posts and results."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from providers.sandbox.common import Context, PostStore, new_token, visible
from providers.sandbox.faults import FaultSpec, canonical_platform
from providers.sandbox.postforme_published import configuration, published
from providers.sandbox.postforme_results import Planned, effective_media, plan_results
from providers.sandbox.postforme_wire import account_json, error, local_media_errors
from providers.sandbox.state import Account, KeyEntry
from providers.sandbox.wire import Request, Response, iso, json_response, parse_when

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


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
    account_configurations: list[Any] | None = None
    planned: list[Planned] = field(default_factory=list)  # every result, visible or not
    stuck: bool = False  # stays `processing` for good

    def results(self, now: float) -> list[dict[str, Any]]:
        """The results visible at `now`, oldest first."""
        return [r for at, r in self.planned if at <= now]

    def advance(self, now: float) -> None:
        """`processing` becomes `processed` once every planned result is visible."""
        if self.status != "processing" or self.stuck or not self.planned:
            return
        last = max(at for at, _ in self.planned)
        if last <= now:
            self.status = "processed"
            self.updated_at = last

    @property
    def ident(self) -> str | None:
        return self.external_id

    def due(self, now: float) -> bool:
        when = self.scheduled_at
        return self.status == "scheduled" and when is not None and when <= now

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
            "account_configurations": self.account_configurations,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class PostForMePosts(PostStore[Post]):
    """PostForMe's posts, with its external_id index."""

    name = "postforme"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._by_external: dict[tuple[str, str], list[str]] = {}

    def _clear_indexes(self) -> None:
        self._by_external.clear()

    def create(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
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
            by_id = {a.id: a for a in visible(key, spec)}
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
        account_configs = body.get("account_configurations")
        if account_configs is not None and not isinstance(account_configs, list):
            errors.append("account_configurations must be an array")
        if spec.refuse_local_media or self.ctx.postforme_refuse_local_media:
            errors.extend(local_media_errors(body))
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
            account_configurations=account_configs,
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
        resp.stored = True
        return resp

    def _publish(self, post: Post, spec: FaultSpec) -> None:
        """Start processing: plan each account's result (a scheduled post from its
        scheduled time, so a late look finds it already done)."""
        start = time.time()
        if post.status == "scheduled" and post.scheduled_at is not None:
            start = min(start, post.scheduled_at)
        targets = [
            (a, effective_media(post.media, post.platform_configurations,
                                post.account_configurations, a))
            for a in post.accounts
        ]
        details = {
            a.id: {"published": published(post.caption, configuration(
                post.platform_configurations, post.account_configurations, a), media, a)}
            for a, media in targets
        }
        planned = plan_results(self.ctx, spec, post.id, targets, start, details)
        post.status = "processing"
        post.stuck = planned is None
        post.planned = planned or []
        post.updated_at = start
        post.advance(time.time())
        for at, result in post.planned:  # each result is an event when it becomes visible
            self.ctx.webhooks.emit(self.name, post.key, "social.post.result.created", at,
                                   functools.partial(dict, result))

    def _settle(self, post: Post, spec: FaultSpec) -> None:
        super()._settle(post, spec)
        post.advance(time.time())

    def get(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
        body = self._json_of(key, post_id, spec)
        if body is None:
            return error(404, f"Social post {post_id} not found")
        return json_response(200, body)

    def delete(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> Response:
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

    def _paged(
        self, req: Request, data: list[Any], total: int, offset: int, limit: int
    ) -> Response:
        """One page of a list, with PostForMe's meta (`next` is the following page's URL)."""
        following = None
        if offset + limit < total:
            query = [(k, v) for k, vs in req.query.items() if k != "offset" for v in vs]
            query.append(("offset", str(offset + limit)))
            following = f"{req.base_url}{req.full_path}?{urlencode(query)}"
        meta = {"total": total, "offset": offset, "limit": limit, "next": following}
        return json_response(200, {"data": data, "meta": meta})

    def list_posts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
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
            posts = self._newest_first(ids, spec)
            if statuses:
                posts = [p for p in posts if p.status in statuses]
            if platforms:
                posts = [p for p in posts if any(a.platform in platforms for a in p.accounts)]
            data = [p.to_json() for p in posts[offset : offset + limit]]
        resp = self._paged(req, data, len(posts), offset, limit)
        if external_ids:
            resp.log = {"external_id": external_ids[0]}
        return resp

    def results(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
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
                posts = self._newest_first(self._by_key.get(key.key, []), spec)
            now = time.time()
            results = [r for p in posts for r in p.results(now)]
        if account_ids:
            results = [r for r in results if r["social_account_id"] in account_ids]
        data = results[offset : offset + limit]
        resp = self._paged(req, data, len(results), offset, limit)
        if post_ids:
            resp.log = {"post_id": post_ids[0]}
        return resp

    def result(self, key: KeyEntry, result_id: str, spec: FaultSpec) -> Response:
        with self._lock:
            now = time.time()
            for pid in self._by_key.get(key.key, []):
                for result in self._posts[pid].results(now):
                    if result["id"] == result_id:
                        return json_response(200, result)
        return error(404, f"Social post result {result_id} not found")
