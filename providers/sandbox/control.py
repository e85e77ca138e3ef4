"""The sandbox's own routes under /_sandbox: keys, faults, scripted responses, stats,
the request log, rate limits and arrivals, connection modes, sample media and the
presigned upload target.

Everything a test can do through the Python object is also reachable over HTTP, so
worker processes, the CLI-served sandbox and other languages can drive it too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from providers.sandbox.faults import PROVIDERS, check_provider
from providers.sandbox.media import SAMPLES, big_jpeg_stream, sample_bytes
from providers.sandbox.wire import BadJson, Request, Response, json_response

if TYPE_CHECKING:
    from providers.sandbox.server import SandboxServer

PREFIX = "/_sandbox"
MAX_BIG = 8 * 1024**3
_TOKEN = re.compile(r"^[0-9a-f]+")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


class ControlApi:
    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        method = "GET" if req.method == "HEAD" else req.method
        try:
            return self._route(req, method, parts)
        except (BadJson, ValueError, TypeError) as exc:
            return _error(400, str(exc))

    def _route(self, req: Request, method: str, parts: list[str]) -> Response:
        box = self.sandbox
        head = parts[0] if parts else ""
        if parts == ["health"] and method == "GET":
            return json_response(
                200, {"ok": True, "postforme": box.postforme_url, "late": box.late_url}
            )
        if parts == ["reset"] and method == "POST":
            box.reset()
            return json_response(200, {"ok": True})
        if parts == ["keys"] and method == "POST":
            body = req.json_object()
            accounts = box.register_key(
                str(body.get("provider", "")), str(body.get("key", "")), body.get("platforms")
            )
            return json_response(201, {"provider": body.get("provider"), "accounts": accounts})
        if parts == ["accounts"] and method == "POST":
            body = req.json_object()
            account = box.add_account(
                str(body.get("provider", "")),
                str(body.get("key", "")),
                str(body.get("platform", "")),
                external_id=body.get("external_id"),
                profile=body.get("profile"),
                username=body.get("username"),
            )
            return json_response(201, account)
        if parts == ["created"] and method == "GET":
            return json_response(200, box.created_accounts())
        if parts == ["keys", "revoke"] and method == "POST":
            body = req.json_object()
            box.revoke_key(str(body.get("provider", "")), str(body.get("key", "")))
            return json_response(200, {"ok": True})
        if parts == ["faults"]:
            if method == "GET":
                return json_response(200, box.get_faults())
            if method == "POST":
                body = dict(req.json_object())
                provider = str(body.pop("provider", ""))
                box.set_faults(provider, **body)
                return json_response(200, box.get_faults()[check_provider(provider)])
        if parts == ["responses"]:
            if method == "GET":
                return json_response(200, {p: box.pending_responses(p) for p in PROVIDERS})
            if method == "POST":
                body = req.json_object()
                entries = body.get("responses")
                if not isinstance(entries, list):
                    raise ValueError("'responses' must be a list of objects")
                pending = box.push_responses(str(body.get("provider", "")), entries)
                return json_response(200, {"pending": pending})
        if head in ("rate-limits", "arrivals", "connections") and len(parts) == 1:
            return self._gateway(req, method, head)
        if parts == ["webhooks"]:
            if method == "POST":  # {provider, attempts?, timeout_seconds?, backoff_seconds?}
                body = dict(req.json_object())
                box.set_webhook_behaviour(str(body.pop("provider", "")), **body)
            if method in ("GET", "POST"):
                return json_response(200, {**box.webhooks(),
                                           "deliveries": box.webhook_deliveries(
                                               req.arg("provider") or None)})
        if parts == ["stats"] and method == "GET":
            return json_response(200, box.stats())
        if parts == ["requests"] and method == "GET":
            return json_response(200, box.requests(req.arg("provider") or None))
        if head == "sample" and len(parts) == 2 and method == "GET":
            return self._sample(req, parts[1])
        if head == "upload" and len(parts) == 2 and method in ("PUT", "POST"):
            return self._upload(req, parts[1])
        if head == "media" and len(parts) == 2 and method == "GET":
            return self._media(parts[1])
        if head == "oauth" and len(parts) == 2 and method == "GET":
            return self._oauth(req, parts[1])
        return _error(404, f"no sandbox route {req.method} {PREFIX}{req.path}")

    def _gateway(self, req: Request, method: str, route: str) -> Response:
        """Rate limits, the arrival log and connection modes (see SandboxServer)."""
        box = self.sandbox
        if route == "rate-limits" and method == "POST":
            body = req.json_object()
            spec = body.get("limits")
            if spec is not None and not isinstance(spec, str):
                raise ValueError("'limits' must be a string like '5/second;40/minute' or null")
            box.set_rate_limits(str(body.get("provider", "")), spec)
        if route == "rate-limits" and method in ("GET", "POST"):
            return json_response(200, box.rate_limits())
        if route == "arrivals" and method == "GET":
            arrivals = box.arrivals(req.arg("provider") or None, req.arg("key") or None)
            return json_response(200, {
                "arrivals": [a.to_dict() for a in arrivals],
                "rate_limited": {p: box.rate_limited(p) for p in PROVIDERS},
            })
        if route == "connections" and method == "POST":
            body = req.json_object()
            box.set_connection_mode(str(body.get("provider", "")), str(body.get("mode", "")))
        if route == "connections" and method in ("GET", "POST"):
            return json_response(200, box.connections())
        return _error(404, f"no sandbox route {req.method} {PREFIX}{req.path}")

    def _sample(self, req: Request, name: str) -> Response:
        if name == "big.jpg":
            size = int(req.arg("size") or 1024 * 1024)
            if not 0 <= size <= MAX_BIG:
                raise ValueError(f"size must be between 0 and {MAX_BIG}")
            return Response(
                status=200,
                content_type="image/jpeg",
                stream=big_jpeg_stream(size),
                content_length=size,
            )
        if name not in SAMPLES:
            return _error(404, f"no sample {name!r}; try {sorted(SAMPLES) + ['big.jpg']}")
        kind, content_type = SAMPLES[name]
        return Response(status=200, body=sample_bytes(kind), content_type=content_type)

    def _upload(self, req: Request, token: str) -> Response:
        content_type = req.headers.get("Content-Type")
        if not self.sandbox.media.put(token, req.body, content_type):
            return _error(404, "unknown or expired upload URL")
        return Response(
            status=200, headers=[("ETag", f'"{token[:16]}"')], content_type="text/plain"
        )

    def _media(self, name: str) -> Response:
        match = _TOKEN.match(name)
        blob = self.sandbox.media.get(match.group(0)) if match else None
        if blob is None or blob.data is None:
            return _error(404, "no such media (was it uploaded?)")
        return Response(
            status=200, body=blob.data, content_type=blob.content_type or "application/octet-stream"
        )

    def _oauth(self, req: Request, platform: str) -> Response:
        """Where an auth URL leads: straight back to the caller's redirect, 'connected'."""
        state = req.arg("state") or ""
        redirect = req.arg("redirect_url")
        if redirect:
            sep = "&" if "?" in redirect else "?"
            query = urlencode({"state": state, "platform": platform, "code": "sandbox"})
            target = f"{redirect}{sep}{query}"
            return Response(status=302, headers=[("Location", target)], content_type="text/plain")
        return json_response(200, {"platform": platform, "state": state, "connected": True})
