"""A fake LATE / Zernio (https://getlate.dev/api/v1), mounted under /late/api/v1.

Faithful where our clients depend on it: publishNow publishes inside the request
(targets with LATE's statuses and errorCategory / errorSource; some may still be
`pending`, and a published one may later turn `failed`), scheduledFor schedules,
neither makes a draft; `x-request-id` replays answer 200 with
the existing post; the same content to the same account inside the duplicate window
answers 409 with the existing post id; every answer carries X-Request-Id and
X-RateLimit-* headers.

This module answers auth, faults, headers and routing, and the accounts, profiles,
connect and media routes; the posts are in late_posts, the wire shapes in late_wire.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlencode

from providers.sandbox.common import Context, ProviderApi, media_upload_urls, new_token, visible
from providers.sandbox.faults import Decision, FaultSpec, canonical_platform
from providers.sandbox.late_posts import LatePosts
from providers.sandbox.late_wire import account_json, error
from providers.sandbox.media import EXTENSION_FOR_TYPE
from providers.sandbox.rate_limits import Verdict
from providers.sandbox.state import KeyEntry
from providers.sandbox.webhooks import Hook
from providers.sandbox.wire import Request, Response, format_seconds, json_response

PREFIX = "/late/api/v1"
RATE_LIMIT = 1200
PLAN_LIMIT_MESSAGE = (
    "Plan limit reached: your plan allows no more posts this month. "
    "Upgrade your plan to keep publishing."
)


class LateApi(ProviderApi):
    name = "late"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.posts = LatePosts(ctx)

    def reset(self) -> None:
        self.posts.reset()

    def created_targets(self) -> list[tuple[str | None, str]]:
        return self.posts.created_targets()

    def targets(self, req: Request, key: KeyEntry) -> list[tuple[str | None, str | None]]:
        """`platforms[]` as sent: (accountId, platform in its seed name when known)."""
        raw = req.json_object().get("platforms")
        if not isinstance(raw, list):
            return []
        out: list[tuple[str | None, str | None]] = []
        for target in raw:
            if not isinstance(target, dict):
                continue
            account = target.get("accountId")
            platform = target.get("platform")
            try:
                platform = canonical_platform(str(platform)) if platform else None
            except ValueError:
                pass  # an unknown platform is logged as sent
            out.append((None if account is None else str(account), platform))
        return out

    def created_accounts(self) -> list[tuple[str | None, str, str]]:
        return self.posts.created_accounts()

    # -- errors and headers ----------------------------------------------------------
    def unauthorized(self, req: Request) -> Response:
        return error(401, "Invalid API key")

    def fault_error(self, req: Request, decision: Decision) -> Response:
        if decision.body is not None:
            return json_response(decision.status, decision.body)
        if decision.status == 401:
            return self.unauthorized(req)
        if decision.status == 403:
            return error(403, decision.message or PLAN_LIMIT_MESSAGE)
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

    def over_limit(self, req: Request, verdict: Verdict) -> Response:
        resp = error(429, "Rate limit exceeded. Please retry later.",
                     retryAfter=verdict.retry_after)
        resp.headers.append(("Retry-After", str(verdict.retry_after)))
        self.limit_headers(resp, verdict)
        return resp

    def limit_headers(self, resp: Response, verdict: Verdict) -> None:
        """A limited key's window on every answer; Reset is the Unix second it frees
        (these replace a fault's made-up ones)."""
        resp.headers = [h for h in resp.headers if not h[0].startswith("X-RateLimit-")]
        resp.headers += [
            ("X-RateLimit-Limit", str(verdict.limit.amount)),
            ("X-RateLimit-Remaining", str(verdict.remaining)),
            ("X-RateLimit-Reset", str(verdict.reset_at())),
        ]

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
                    return self.create(req, key, spec, self.posts.create)
                if method == "GET":
                    return self.posts.list_posts(req, key, spec)
            elif len(parts) == 2 and parts[0] == "posts":
                if method == "GET":
                    return self.posts.get(key, parts[1], spec)
                if method == "DELETE":
                    return self.posts.delete(key, parts[1], spec)
            elif len(parts) == 3 and parts[0] == "posts" and parts[2] == "retry":
                if method == "POST":
                    return self.posts.retry(key, parts[1], spec)
            elif parts == ["accounts"] and method == "GET":
                return self._accounts(req, key, spec)
            elif parts == ["profiles"] and method == "GET":
                return self._profiles(key)
            elif parts == ["profiles"] and method == "POST":
                return self._new_profile(req, key)
            elif len(parts) == 2 and parts[0] == "connect" and method == "GET":
                return self._connect(req, parts[1])
            elif parts == ["media", "presign"] and method == "POST":
                return self._presign(req)
            elif parts == ["webhooks", "settings"] and method in ("GET", "POST"):
                return self._webhooks(req, key)
        except ValueError as exc:  # BadJson, or a bad platform name
            return error(400, str(exc))
        return error(404, f"Route {method} {PREFIX}{req.path} not found")

    # -- accounts, profiles, OAuth, media ---------------------------------------------
    def _accounts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        accounts = visible(key, spec)
        profile = req.arg("profileId")
        if profile:
            accounts = [a for a in accounts if a.profile_id == profile]
        platform = req.arg("platform")
        if platform:
            accounts = [a for a in accounts if a.platform == canonical_platform(platform)]
        data = [account_json(a) for a in accounts]
        # The official SDK refuses a list without hasAnalyticsAccess.
        return json_response(200, {"accounts": data, "hasAnalyticsAccess": False})

    def _profiles(self, key: KeyEntry) -> Response:
        profiles = [
            {"_id": pid, "name": name, "isDefault": pid == key.profile_id}
            for pid, name in list(key.profiles.items())
        ]
        return json_response(200, {"profiles": profiles})

    def _new_profile(self, req: Request, key: KeyEntry) -> Response:
        """POST /profiles {name, description?}: a new profile (names need not be unique)."""
        body = req.json_object()
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return error(400, "name is required", param="name")
        profile_id = self.ctx.keys.add_profile(self.name, key.key, name)
        profile = {"_id": profile_id, "name": name, "isDefault": False,
                   "description": body.get("description")}
        resp = json_response(201, {"message": "Profile created successfully", "profile": profile})
        resp.log = {"profile_id": profile_id, "profile_name": name}
        return resp

    def _connect(self, req: Request, platform_name: str) -> Response:
        platform = canonical_platform(platform_name)
        profile = req.arg("profileId") or ""
        state = new_token(8)
        query = {"state": state, "redirect_url": req.arg("redirect_url") or ""}
        if profile:
            query["profileId"] = profile
        url = f"{req.base_url}/_sandbox/oauth/{platform}?{urlencode(query)}"
        resp = json_response(200, {"authUrl": url, "state": state})
        resp.log = {"profile_id": profile or None, "platform": platform}
        return resp

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

    def _webhooks(self, req: Request, key: KeyEntry) -> Response:
        """POST /webhooks/settings {name, url, secret, events}: an endpoint signed with the
        caller's `secret` (none: unsigned); GET lists them (secrets never shown)."""
        hooks = self.ctx.webhooks
        if req.method == "POST":
            body = req.json_object()
            events = body.get("events") or []
            secret = body.get("secret")
            if not isinstance(events, list):
                return error(400, "events must be an array", param="events")
            if secret is not None and not isinstance(secret, str):
                return error(400, "secret must be a string", param="secret")
            hook = hooks.register(self.name, key.key, str(body.get("url") or ""),
                                  [str(e) for e in events], secret=secret or None,
                                  name=str(body.get("name") or "") or None)
            resp = json_response(200, {"success": True, "webhook": _hook_json(hook)})
            resp.log = {"webhook_id": hook.id, "url": hook.url}
            return resp
        return json_response(200, {"webhooks": [_hook_json(h)
                                                for h in hooks.hooks(self.name, key.key)]})


def _hook_json(hook: Hook) -> dict[str, Any]:
    return {"_id": hook.id, "name": hook.name, "url": hook.url, "events": list(hook.events),
            "isActive": True}
