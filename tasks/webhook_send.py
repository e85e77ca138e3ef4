"""One webhook delivery attempt, by the Standard Webhooks spec, and what follows from it.

The body is `{"type", "timestamp", "data"}` (`data`: the post document of
db.post_view, as `socialpost show --json` prints it); the headers are `webhook-id` (the
event id: the same on every retry and every redelivery, so receivers dedupe on it),
`webhook-timestamp` (this attempt's, in seconds) and `webhook-signature`
(`v1,<base64 HMAC-SHA256>` by the `standardwebhooks` library). A 2xx is success;
anything else (or no answer within SOCIALPOST_WEBHOOK_TIMEOUT) is retried on the
schedule, with jitter, until SOCIALPOST_WEBHOOK_RETRY_FOR has passed. Redirects are not
followed (a redirect could lead past the SSRF rule), and the URL is checked again at
every attempt (its DNS may have changed since it was registered).
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

import settings
from db import post_view, webhook_deliveries
from db.errors import VaultError
from db.pool import connection
from db.vault import Vault
from providers.media import check_public_url

log = logging.getLogger("socialpost.webhooks")

USER_AGENT = "social-posting-webhooks/1"
ANSWER_KEPT = 500  # characters of a receiver's answer kept in the delivery log


def event_body(event: dict[str, Any]) -> dict[str, Any]:
    """The payload of outbox `event` (id, type, created_at, data snapshot): the same for
    webhooks and Celery callbacks."""
    data = event.get("data") or {}
    created = event.get("created_at") or event.get("event_created_at")
    return {
        "type": event["type"],
        "timestamp": created.isoformat() if isinstance(created, datetime) else created,
        "data": post_view.post_document(data) if "status" in data else post_view.plain(data),
    }


def retry_wait(attempt: int, waits: tuple[float, ...], jitter: float,
               rng: random.Random | None = None) -> float:
    """Seconds before retrying after failed attempt number `attempt` (1-based): the
    schedule's `attempt`-th wait (its last one repeats), varied by +-`jitter`."""
    base = waits[min(max(attempt, 1), len(waits)) - 1]
    spread = base * jitter
    return max(0.1, base + (rng or random).uniform(-spread, spread))


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: `ok` for a 2xx; the answer's first bytes or the reason."""

    ok: bool
    http_status: int | None
    latency_ms: int
    response: str


_local = threading.local()


def _session() -> requests.Session:
    """This thread's session: connections to a receiver are kept alive between attempts
    (a fresh TLS handshake per event would cost more than the event). Per process and
    thread: a prefork child must not share its parent's sockets, and a `-P threads`
    worker's threads must not share one session."""
    pid = os.getpid()
    held = getattr(_local, "session", None)
    if held is None or held[0] != pid:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment between us and a receiver
        held = _local.session = (pid, session)
    return held[1]


def post_signed(url: str, signer: Webhook, event_id: str, body: str, timeout: float,
                connect_timeout: float) -> Outcome:
    """POST `body` to `url` signed by `signer` under id `event_id`; never raises."""
    started = time.monotonic()
    problem = check_public_url(url, "webhook")
    if problem:
        return Outcome(False, None, 0, problem)
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(event_id, now, body),
    }
    try:
        resp = _session().post(url, data=body.encode("utf-8"), headers=headers,
                               timeout=(min(timeout, connect_timeout), timeout),
                               allow_redirects=False, stream=True)
        head = b""
        # The answer's start (a short answer read whole keeps the connection alive), by
        # the attempt's deadline: the timeout bounds each read, so a receiver trickling its
        # answer could otherwise hold the attempt past its lease. read1 returns what one
        # read brought (iter_content waits for whole chunks).
        deadline = started + timeout
        try:
            while len(head) <= ANSWER_KEPT * 4 and time.monotonic() < deadline:
                chunk = resp.raw.read1(1024, decode_content=True)
                if not chunk:
                    break
                head += chunk
        finally:
            resp.close()
        text = head.decode("utf-8", errors="replace")[:ANSWER_KEPT]
        ok = 200 <= resp.status_code < 300
        return Outcome(ok, resp.status_code, _ms(started), text)
    except requests.RequestException as exc:
        return Outcome(False, None, _ms(started), f"{type(exc).__name__}: no answer")


# Signers by encrypted secret, per process: an endpoint's secret is decrypted once, not
# at every attempt (ENCRYPTION_KEY is part of the key, so a rotation is seen at once).
_signers: dict[tuple[str, str], Webhook] = {}


def _signer(encrypted_secret: str, keys: str | None, vault: Vault | None) -> Webhook:
    cached = _signers.get((keys or "", encrypted_secret))
    if cached is None:
        secret = (vault or Vault((keys or "").split(","))).decrypt(encrypted_secret)
        if len(_signers) > 1000:
            _signers.clear()
        cached = _signers[(keys or "", encrypted_secret)] = Webhook(secret)
    return cached


def _ms(start: float) -> int:
    return int((time.monotonic() - start) * 1000)


def attempt(delivery_id: int, token: str, *, vault: Vault | None = None,
            rng: random.Random | None = None) -> str:
    """Make one attempt of delivery `delivery_id` under lease `token` and record it:
    'delivered', 'retry', 'failed' (retries exhausted), or 'skipped' (not ours now).
    No pooled connection is held over the HTTP call: a threads worker runs many attempts
    at once, and a slow receiver must not take the connections publishing needs."""
    s = settings.current()
    with connection() as conn:
        delivery = webhook_deliveries.begin(conn, delivery_id, token)
    if delivery is None:
        return "skipped"
    event_id = str(delivery["event_id"])
    body = json.dumps(event_body(delivery), separators=(",", ":"), ensure_ascii=False)
    try:
        signer = _signer(delivery["encrypted_secret"], s.encryption_key, vault)
        outcome = post_signed(delivery["url"], signer, event_id, body, s.webhook_timeout,
                              s.connect_timeout)
    except VaultError as exc:  # one line naming ENCRYPTION_KEY, never the secret
        outcome = Outcome(False, None, 0, str(exc))
    retry_in: float | None = None
    if not outcome.ok:
        age = (datetime.now(UTC) - delivery["delivery_created_at"]).total_seconds()
        wait = retry_wait(delivery["attempt"], s.retry_waits(), s.webhook_jitter, rng)
        retry_in = wait if age + wait <= s.webhook_retry_for else None
    with connection() as conn:
        _, disabled = webhook_deliveries.record(
            conn, delivery_id, token, attempt=delivery["attempt"], ok=outcome.ok,
            http_status=outcome.http_status, latency_ms=outcome.latency_ms,
            response=outcome.response, retry_in=retry_in,
            max_failures=s.webhook_disable_failures,
            max_failing_seconds=s.webhook_disable_after)
    if disabled is not None and not outcome.ok:
        log.warning("webhook endpoint %s disabled: it kept failing", delivery["endpoint_id"])
    if outcome.ok:
        return "delivered"
    log.info("webhook %s to endpoint %s: attempt %d failed (%s)%s", event_id,
             delivery["endpoint_id"], delivery["attempt"],
             outcome.http_status or outcome.response,
             f"; next in {retry_in:.0f} s" if retry_in is not None else "; giving up")
    return "retry" if retry_in is not None else "failed"
