"""Provider webhooks in: `POST /hooks/postforme` and `POST /hooks/late`, the fast path for
confirmed outcomes (beat's confirmation sweep stays the net).

No bearer token: each provider proves itself its own way, checked in constant time
before the body is read as JSON. PostForMe sends its webhook's secret raw in
`Post-For-Me-Webhook-Secret`; LATE signs the raw body (`X-Zernio-Signature`, legacy
`X-Late-Signature`: hex HMAC-SHA256 with the secret). The secrets are
POSTFORME_WEBHOOK_SECRET / LATE_WEBHOOK_SECRET and the ones `socialpost hooks register`
stored (either passes, so a new registration works before the settings change). An
unverifiable event is `401`, a malformed one `400`; neither changes anything.

The request does the minimum (PostForMe gives up after 1 s): verify, then one short
transaction (tasks.provider_hooks.receive: take the event once, judge and write its
targets as the poll would). A post a worker holds right now is `503` with Retry-After:
the provider's retry applies it, or the sweep does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import settings
from api.problems import Problem, responses
from tasks import provider_hooks

log = logging.getLogger("socialpost.api.hooks")
router = APIRouter(tags=["provider webhooks"])
SECRETS_FOR = 10.0  # seconds a process reuses the stored secrets it read
REREAD_AFTER = 1.0  # ...but a request that fails with them reads them again after this


class Receipt(BaseModel):
    """What became of the event."""

    result: str = Field(description="`applied`, `duplicate` (taken before) or `ignored` "
                                    "(not about an outcome we wait for)")
    changed: int = Field(description="targets this event changed")


_cache: dict[str, tuple[float, str | None]] = {}
_cache_lock = threading.Lock()


def _stored(provider: str, max_age: float) -> str | None:
    """The secret `hooks register` stored (decrypted), if read less than `max_age` s ago."""
    with _cache_lock:
        hit = _cache.get(provider)
        if hit is not None and time.monotonic() - hit[0] < max_age:
            return hit[1]
    from db import hooks
    from db.pool import connection
    from db.vault import Vault, VaultError

    try:
        vault = Vault.from_env()
        with connection() as conn:
            secret = hooks.stored_secret(conn, vault, provider)
    except (VaultError, ValueError) as exc:  # no or a wrong ENCRYPTION_KEY: settings only
        log.warning("%s webhook: the stored secret cannot be read: %s", provider,
                    type(exc).__name__)
        secret = None
    with _cache_lock:
        _cache[provider] = (time.monotonic(), secret)
    return secret


def secrets_for(provider: str, max_age: float = SECRETS_FOR) -> list[str]:
    """Every secret that verifies `provider`'s webhooks: the setting's, the stored one."""
    config = settings.current()
    given = config.postforme_webhook_secret if provider == "postforme" \
        else config.late_webhook_secret
    return [s for s in dict.fromkeys([given, _stored(provider, max_age)]) if s]


async def _verified(provider: str, check: Callable[[list[str]], bool]) -> None:
    """401 unless `check` passes with one of the provider's secrets; a failure reads the
    stored secret again (at most once a second), so a new registration works at once."""
    for max_age in (SECRETS_FOR, REREAD_AFTER):
        known = await run_in_threadpool(secrets_for, provider, max_age)
        if not known:
            name = "POSTFORME_WEBHOOK_SECRET" if provider == "postforme" \
                else "LATE_WEBHOOK_SECRET"
            raise _refuse(f"no {provider} webhook secret is configured ({name} or "
                          "`socialpost hooks register`)")
        if check(known):
            return
    what = "Post-For-Me-Webhook-Secret" if provider == "postforme" else \
        "X-Zernio-Signature (hex HMAC-SHA256 of the body)"
    raise _refuse(f"wrong or missing {what}")


def _refuse(detail: str) -> Problem:
    return Problem(401, "unverified-webhook", detail, title="Unverified webhook")


def _body_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "bad-webhook", "the body is not JSON", title="Bad webhook",
                      errors=[("body", "must be a JSON document")]) from None


async def _take(event: provider_hooks.Event) -> Receipt:
    from tasks.publish import send_deliveries

    def send(post_id: str) -> None:  # a requeued post's next step, as the sweep sends it
        send_deliveries([(post_id, None)])

    try:
        got = await run_in_threadpool(provider_hooks.receive, event, send)
    except provider_hooks.Held:
        raise Problem(503, "busy", "a worker holds this post now; send it again shortly",
                      headers={"Retry-After": "1"}) from None
    log.info("%s webhook %s (%s): %s, %d target(s) changed", event.provider, event.kind,
             event.event_id, got.result, got.changed)
    return Receipt(result=got.result, changed=got.changed)


def _bad(exc: provider_hooks.BadEvent) -> Problem:
    name, _, rule = str(exc).partition(": ")
    return Problem(400, "bad-webhook", "the body is not an event of this provider's",
                   title="Bad webhook", errors=[(name, rule or str(exc))])


def _route(path: str, summary: str) -> Callable[[Any], Any]:
    return router.post(path, response_model=Receipt, summary=summary,
                       responses=responses(400, 401, 413, 503))


@_route("/hooks/postforme", "PostForMe's webhooks (its secret in Post-For-Me-Webhook-Secret)")
async def postforme(request: Request) -> Receipt:
    """Each `social.post.result.created` (one account's outcome) updates its target as
    the confirmation poll would; other events are acknowledged. Deduplicated on the
    result id (`data.id`), since PostForMe sends no event id."""
    given = (request.headers.get("post-for-me-webhook-secret") or "").encode()
    await _verified("postforme", lambda known: any(
        hmac.compare_digest(given, k.encode()) for k in known))
    try:
        event = provider_hooks.parse_postforme(_body_json(await request.body()))
    except provider_hooks.BadEvent as exc:
        raise _bad(exc) from None
    return await _take(event)


@_route("/hooks/late", "LATE's webhooks (signed: X-Zernio-Signature)")
async def late(request: Request) -> Receipt:
    """`post.platform.published|failed` and `post.published|failed|partial` update the
    targets they name as the confirmation poll would (a failure after a success is a
    revision); other events are acknowledged. Deduplicated on `X-Zernio-Event-Id`
    (the legacy `X-Late-*` headers are read too)."""
    headers = request.headers

    def header(name: str) -> str | None:
        return headers.get(f"x-zernio-{name}") or headers.get(f"x-late-{name}")

    raw = await request.body()
    given = (header("signature") or "").strip().lower().encode()
    await _verified("late", lambda known: any(
        hmac.compare_digest(given, hmac.new(k.encode(), raw, hashlib.sha256).hexdigest()
                            .encode()) for k in known))
    try:
        event = provider_hooks.parse_late(_body_json(raw), header("event"),
                                          header("event-id"))
    except provider_hooks.BadEvent as exc:
        raise _bad(exc) from None
    return await _take(event)
