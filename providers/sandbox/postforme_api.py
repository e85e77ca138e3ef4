"""A fake PostForMe (https://api.postforme.dev/v1), mounted under /postforme/v1.

Faithful where our clients depend on it: 201 creates with the post as the body,
asynchronous status (a create answers `processing`; results, one per account or two
after an internal retry, arrive after `result_delay_seconds`, or never for a stuck
post; platform rules fail as results, not at create), lookup by `external_id` (its
only idempotency handle), delete only for scheduled/draft, NestJS-style errors.

This module answers auth, faults and routing, and the accounts, OAuth and media
routes; the posts are in postforme_posts, the wire shapes in postforme_wire.
"""

from __future__ import annotations

from urllib.parse import urlencode

from providers.sandbox.common import Context, ProviderApi, media_upload_urls, new_token, visible
from providers.sandbox.faults import Decision, FaultSpec, canonical_platform
from providers.sandbox.media import EXTENSION_FOR_TYPE
from providers.sandbox.postforme_posts import PostForMePosts
from providers.sandbox.postforme_wire import REASONS, account_json, error
from providers.sandbox.rate_limits import Verdict
from providers.sandbox.state import KeyEntry
from providers.sandbox.wire import Request, Response, format_seconds, json_response

PREFIX = "/postforme/v1"
OVER_LIMIT_BODY = {"statusCode": 429, "message": "Too many requests, please try again later"}


def _listed(req: Request, name: str) -> list[str]:
    """A list filter, repeated (`?a=1&a=2`) or comma-joined (`?a=1,2`) as the SDK sends."""
    return [v.strip() for raw in req.args(name) for v in raw.split(",") if v.strip()]


class PostForMeApi(ProviderApi):
    name = "postforme"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.posts = PostForMePosts(ctx)

    def reset(self) -> None:
        self.posts.reset()

    def created_targets(self) -> list[tuple[str | None, str]]:
        return self.posts.created_targets()

    def targets(self, req: Request, key: KeyEntry) -> list[tuple[str | None, str | None]]:
        """`social_accounts` as sent, each with its platform (None if not the key's)."""
        raw = req.json_object().get("social_accounts")
        by_id = {a.id: a.platform for a in key.accounts}
        if not isinstance(raw, list):
            return []
        return [(str(a), by_id.get(str(a))) for a in raw if a is not None]

    def created_accounts(self) -> list[tuple[str | None, str, str]]:
        return self.posts.created_accounts()

    # -- errors the shared flow asks for ---------------------------------------------
    def unauthorized(self, req: Request) -> Response:
        return error(401, "Invalid or missing API key")

    def fault_error(self, req: Request, decision: Decision) -> Response:
        if decision.body is not None:
            return json_response(decision.status, decision.body)
        if decision.status == 401:
            return self.unauthorized(req)
        reason = REASONS.get(decision.status, "Error")
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

    def over_limit(self, req: Request, verdict: Verdict) -> Response:
        """PostForMe's throttler: its headers come only on the 429, and its Reset is
        seconds until the window frees a slot, not a time."""
        wait = str(verdict.retry_after)
        return json_response(429, OVER_LIMIT_BODY, headers=[
            ("Retry-After", wait),
            ("X-Rate-Limit-Limit", str(verdict.limit.amount)),
            ("X-Rate-Limit-Remaining", "0"),
            ("X-Rate-Limit-Reset", wait),
            ("X-Rate-Limit-Name", verdict.limit.name),
            ("X-Rate-Limit-Duration", format_seconds(verdict.limit.seconds)),
        ])

    # -- routing ---------------------------------------------------------------------
    def route(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        parts = [p for p in req.path.split("/") if p]
        method = req.method
        try:
            if parts == ["social-posts"]:
                if method == "POST":
                    return self.create(req, key, spec, self.posts.create)
                if method == "GET":
                    return self.posts.list_posts(req, key, spec)
            elif len(parts) == 2 and parts[0] == "social-posts":
                if method == "GET":
                    return self.posts.get(key, parts[1], spec)
                if method == "DELETE":
                    return self.posts.delete(key, parts[1], spec)
            elif parts == ["social-post-results"] and method == "GET":
                return self.posts.results(req, key, spec)
            elif len(parts) == 2 and parts[0] == "social-post-results" and method == "GET":
                return self.posts.result(key, parts[1], spec)
            elif parts == ["social-accounts"] and method == "GET":
                return self._accounts(req, key, spec)
            elif len(parts) == 2 and parts == ["social-accounts", "auth-url"] and method == "POST":
                return self._auth_url(req, spec)
            elif len(parts) == 2 and parts[0] == "social-accounts" and method == "GET":
                return self._account(key, parts[1], spec)
            elif parts == ["media", "create-upload-url"] and method == "POST":
                return self._upload_url(req)
            elif parts[:1] == ["webhooks"]:
                return self._webhooks(req, key, parts[1:])
        except ValueError as exc:  # BadJson, or a bad platform filter
            return error(400, str(exc))
        return error(404, f"Cannot {method} {PREFIX}{req.path}")

    # -- accounts and auth -------------------------------------------------------------
    def _accounts(self, req: Request, key: KeyEntry, spec: FaultSpec) -> Response:
        accounts = visible(key, spec)
        wanted = {canonical_platform(p) for p in _listed(req, "platform")}
        if wanted:
            accounts = [a for a in accounts if a.platform in wanted]
        tags = set(_listed(req, "external_id"))
        if tags:
            accounts = [a for a in accounts if a.external_id in tags]
        statuses = set(_listed(req, "status"))
        if statuses:
            accounts = [a for a in accounts if "connected" in statuses]
        data = [account_json(a) for a in accounts]
        meta = {"total": len(data), "offset": 0, "limit": len(data), "next": None}
        resp = json_response(200, {"data": data, "meta": meta})
        if tags:
            resp.log = {"external_id": ",".join(sorted(tags))}
        return resp

    def _account(self, key: KeyEntry, account_id: str, spec: FaultSpec) -> Response:
        for account in visible(key, spec):
            if account.id == account_id:
                return json_response(200, account_json(account))
        return error(404, f"Social account {account_id} not found")

    def _auth_url(self, req: Request, spec: FaultSpec) -> Response:
        body = req.json_object()
        try:
            platform = canonical_platform(str(body.get("platform") or ""))
        except ValueError as exc:
            return error(400, str(exc))
        external_id = body.get("external_id")
        if external_id is not None and not isinstance(external_id, str):
            return error(400, "external_id must be a string")
        state = new_token(8)
        redirect = (
            body.get("redirect_url_override")
            or body.get("redirect_url")
            or body.get("redirectUrl")
            or ""
        )
        query = {"state": state, "redirect_url": redirect}
        if external_id:
            query["external_id"] = external_id
        url = f"{req.base_url}/_sandbox/oauth/{platform}?" + urlencode(query)
        if spec.seed_shapes:
            resp = json_response(200, {"data": {"auth_url": url}})
        else:
            name = "x" if platform == "twitter" else platform
            resp = json_response(201, {"url": url, "platform": name})
        resp.log = {"external_id": external_id, "platform": platform, "redirect_url": redirect}
        return resp

    def _upload_url(self, req: Request) -> Response:
        body = req.json_object()
        declared = body.get("content_type") or body.get("contentType")
        declared = str(declared).lower() if declared else None
        extension = EXTENSION_FOR_TYPE.get(declared or "", "")
        upload, public = media_upload_urls(req.base_url, extension, declared, self.ctx.media)
        return json_response(201, {"upload_url": upload, "media_url": public})

    # -- webhooks ----------------------------------------------------------------------
    def _webhooks(self, req: Request, key: KeyEntry, rest: list[str]) -> Response:
        """POST /webhooks {url, event_types} answers the endpoint with the `secret`
        PostForMe made (sent back raw in Post-For-Me-Webhook-Secret); GET lists them;
        DELETE /webhooks/{id} removes one."""
        hooks = self.ctx.webhooks
        if not rest and req.method == "POST":
            body = req.json_object()
            events = body.get("event_types") or []
            if not isinstance(events, list):
                return error(400, "Validation failed", ["event_types must be an array"])
            secret = f"whsec_{new_token(24)}"
            hook = hooks.register(self.name, key.key, str(body.get("url") or ""),
                                  [str(e) for e in events], secret=secret)
            resp = json_response(201, {"id": hook.id, "url": hook.url,
                                       "event_types": list(hook.events), "secret": secret})
            resp.log = {"webhook_id": hook.id, "url": hook.url}
            return resp
        if not rest and req.method == "GET":
            data = [{"id": h.id, "url": h.url, "event_types": list(h.events)}
                    for h in hooks.hooks(self.name, key.key)]
            meta = {"total": len(data), "offset": 0, "limit": len(data), "next": None}
            return json_response(200, {"data": data, "meta": meta})
        if len(rest) == 1 and req.method == "DELETE":
            if hooks.remove(self.name, key.key, rest[0]):
                return json_response(200, {"success": True})
            return error(404, f"Webhook {rest[0]} not found")
        return error(404, f"Cannot {req.method} {PREFIX}{req.path}")
