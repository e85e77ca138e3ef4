"""What both fake providers share: auth, latency, the create-post fault flow and the
post store. Why a target fails after acceptance is in outcomes."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from providers.sandbox.faults import Decision, Faults, FaultSpec
from providers.sandbox.media import VIDEO_EXTENSIONS, MediaStore
from providers.sandbox.rate_limits import RateLimits, Verdict
from providers.sandbox.state import Account, KeyEntry, KeyRegistry, Recorder
from providers.sandbox.wire import Request, Response

if TYPE_CHECKING:
    from providers.sandbox.webhooks import Webhooks

MEDIA_PREFIX = "/_sandbox/media/"
UPLOAD_PREFIX = "/_sandbox/upload/"


@dataclass
class Context:
    """The sandbox's shared state, handed to every API module."""

    keys: KeyRegistry
    faults: Faults
    recorder: Recorder
    media: MediaStore
    duplicate_window_seconds: float
    limits: RateLimits
    webhooks: Webhooks
    postforme_refuse_local_media: bool = False  # for the server's life; a fault can add it
    postforme_result_delay_seconds: float = 0.0  # the default; a fault can override it


def new_token(nbytes: int = 10) -> str:
    return secrets.token_hex(nbytes)


def platform_post_id() -> str:
    return str(10**18 + secrets.randbelow(9 * 10**18))


_URLS = {
    "twitter": "https://x.com/{u}/status/{id}",
    "linkedin": "https://www.linkedin.com/feed/update/urn:li:share:{id}",
    "instagram": "https://www.instagram.com/p/{id}/",
    "facebook": "https://www.facebook.com/{u}/posts/{id}",
    "tiktok": "https://www.tiktok.com/@{u}/video/{id}",
    "threads": "https://www.threads.net/@{u}/post/{id}",
    "bluesky": "https://bsky.app/profile/{u}.bsky.social/post/{id}",
    "youtube": "https://www.youtube.com/watch?v={id}",
    "pinterest": "https://www.pinterest.com/pin/{id}/",
}


def platform_post_url(platform: str, username: str, post_id: str) -> str:
    return _URLS[platform].format(u=username, id=post_id)


def media_upload_urls(
    base_url: str, extension: str, declared_type: str | None, media: MediaStore
) -> tuple[str, str]:
    """(upload URL for PUT, public URL for GET) of a fresh media slot."""
    token = new_token()
    media.reserve(token, declared_type)
    return f"{base_url}{UPLOAD_PREFIX}{token}", f"{base_url}{MEDIA_PREFIX}{token}{extension}"


def is_video(url: str, declared: str | None, media: MediaStore) -> bool:
    """A video by declared type, by sandbox upload Content-Type, or by extension."""
    if declared:
        return declared.lower() == "video"
    path = url.split("?", 1)[0].lower()
    marker = path.find(MEDIA_PREFIX)
    if marker >= 0:
        token = path[marker + len(MEDIA_PREFIX) :].split(".", 1)[0]
        stored = media.content_type_of(token)
        if stored:
            return stored.startswith("video/")
    return path.endswith(VIDEO_EXTENSIONS)


class ProviderApi:
    """Template for one fake provider: auth and latency on every route, faults on create."""

    name = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- hooks the providers fill in -------------------------------------------------
    def route(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        raise NotImplementedError

    def unauthorized(self, req: Request) -> Response:
        raise NotImplementedError

    def fault_error(self, req: Request, decision: Decision) -> Response:
        raise NotImplementedError

    def rate_limited(self, req: Request, decision: Decision) -> Response:
        raise NotImplementedError

    def over_limit(self, req: Request, verdict: Verdict) -> Response:
        """The gateway's 429 when the key's rate limit is spent."""
        raise NotImplementedError

    def limit_headers(self, resp: Response, verdict: Verdict) -> None:
        """Rate-limit headers on an admitted answer of a limited key (none by default)."""

    def finish(self, req: Request, resp: Response) -> Response:
        return resp

    # -- shared flow -----------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """The gateway's rate limits first (a refusal is quick and touches nothing),
        then latency, auth and the route."""
        verdict = self.ctx.limits.admit(self.name, req.bearer(), req.received_monotonic)
        if verdict is not None and not verdict.allowed:
            resp = self.over_limit(req, verdict)
            resp.log["rate_limited"] = True
            return self.finish(req, resp)
        spec = self.ctx.faults.spec(self.name)
        if spec.latency_ms:
            time.sleep(spec.latency_ms / 1000.0)
        key = self.ctx.keys.lookup(self.name, req.bearer())
        resp = self.unauthorized(req) if key is None else self.route(req, key, spec)
        if verdict is not None:
            self.limit_headers(resp, verdict)
        return self.finish(req, resp)

    def targets(self, req: Request, key: KeyEntry) -> list[tuple[str | None, str | None]]:
        """(account id, platform) of each target the create asks for, as sent."""
        raise NotImplementedError

    def create(self, req: Request, key: KeyEntry, spec: FaultSpec, do_create: Any) -> Response:
        """Run one create-post through the fault plan. "error" and "rate_limit" answer
        instead of the provider (nothing stored); "hang" stores the post, then never
        answers; "create_then_error" stores it, then answers a 5xx; a delay stores it,
        then answers late. The log names the accounts and platforms asked for."""
        decision = self.ctx.faults.decide_create(self.name)
        if decision.kind == "error":
            resp = self.fault_error(req, decision)
        elif decision.kind == "rate_limit":
            resp = self.rate_limited(req, decision)
        else:
            resp = do_create(req, key, spec)
            if decision.kind == "hang":
                stored = resp.stored
                resp = Response(status=0, hang_seconds=decision.hang_seconds, log=resp.log)
                resp.stored = stored
            elif resp.stored:
                resp = self._lose_answer(req, resp, decision, spec)
        try:
            asked = self.targets(req, key)
        except ValueError:  # not JSON: the log says nothing about targets
            asked = []
        resp.log = {
            "account_ids": [a for a, _ in asked],
            "platforms": [p for _, p in asked],
            "stored": resp.stored,
            **resp.log,
        }
        resp.create_request = True
        return resp

    def _lose_answer(
        self, req: Request, resp: Response, decision: Decision, spec: FaultSpec
    ) -> Response:
        """A stored create's answer, maybe replaced by a 5xx and maybe sent late."""
        if decision.kind == "create_then_error":
            error = self.fault_error(req, decision)
            error.log = {**resp.log, "answered_instead_of": resp.status}
            error.stored = True
            resp = error
        delay = decision.delay_seconds
        if delay is None:
            delay = spec.create_delay_seconds
        if delay:
            resp.delay_seconds = delay
            resp.log["delayed_seconds"] = delay
        return resp


def visible(key: KeyEntry, spec: FaultSpec) -> list[Account]:
    """The key's accounts minus the platforms a fault hides."""
    hidden = spec.missing_platforms
    return [a for a in key.accounts if a.platform not in hidden]


class StoredPost(Protocol):
    key: str  # the API key that created it
    status: str
    accounts: list[Account]

    @property
    def ident(self) -> str | None:
        """Our idempotency key as the provider keeps it (external_id / x-request-id)."""
        ...

    def due(self, now: float) -> bool:
        """Scheduled, and its time has come."""
        ...

    def to_json(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=StoredPost)


class PostStore(Generic[P]):
    """One fake provider's posts, by id and by API key, under one lock. A scheduled post
    is published when someone looks at it after its time."""

    name = ""  # the provider, as the recorder names it

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._posts: dict[str, P] = {}
        self._by_key: dict[str, list[str]] = {}

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()
            self._by_key.clear()
            self._clear_indexes()

    def _clear_indexes(self) -> None:
        """Hook: forget the provider's own lookups (called under the lock)."""

    def created_targets(self) -> list[tuple[str | None, str]]:
        """(our idempotency key, platform) of every post held, one per target account."""
        with self._lock:
            return [(p.ident, a.platform) for p in self._posts.values() for a in p.accounts]

    def created_accounts(self) -> list[tuple[str | None, str, str]]:
        """(our idempotency key, platform, account id) of every post held, one per target."""
        with self._lock:
            return [(p.ident, a.platform, a.id) for p in self._posts.values() for a in p.accounts]

    def _publish(self, post: P, spec: FaultSpec) -> None:
        raise NotImplementedError

    def _settle(self, post: P, spec: FaultSpec) -> None:
        if post.due(time.time()):
            self._publish(post, spec)

    def _owned(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> P | None:
        """The post if `key` created it, settled (under the lock)."""
        post = self._posts.get(post_id)
        if post is None or post.key != key.key:
            return None
        self._settle(post, spec)
        return post

    def _newest_first(self, post_ids: list[str], spec: FaultSpec) -> list[P]:
        """The posts `post_ids` (oldest first) names, newest first, settled (under the lock)."""
        posts = [self._posts[pid] for pid in reversed(post_ids)]
        for post in posts:
            self._settle(post, spec)
        return posts

    def _json_of(self, key: KeyEntry, post_id: str, spec: FaultSpec) -> dict[str, Any] | None:
        """The post as its provider shows it, if `key` created it; None otherwise."""
        with self._lock:
            post = self._owned(key, post_id, spec)
            return None if post is None else post.to_json()
