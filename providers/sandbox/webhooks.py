"""The sandbox's outgoing webhooks, sent as the real PostForMe and LATE send theirs.

PostForMe (`POST /webhooks {url, event_types}` answers the secret it made) posts
`{event_type, data}` with the raw secret in `Post-For-Me-Webhook-Secret`: no signature,
no event id (receivers dedupe on `data.id`); up to 8 tries within seconds, each given
1 s. LATE (`POST /webhooks/settings {name, url, secret, events}`) posts `{id, event,
post, platform, account, timestamp}` with `X-Zernio-Event`, `X-Zernio-Event-Id` (the same
on every retry) and `X-Zernio-Signature`, the hex HMAC-SHA256 of the raw body with the
secret (only when one is set), and the legacy `X-Late-*` copies; it retries with backoff.

Each behaviour (tries, timeout, first backoff) is a setting per provider
(`set_behaviour`), so tests can make a receiver's outage visible. Events are planned for
the time the provider's state changes (a result becoming visible, a target finishing)
and rendered when that time comes; one dispatcher thread hands due sends to a small
pool, so a slow receiver delays nobody else.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from providers.sandbox.common import new_token
from providers.sandbox.faults import PROVIDERS, check_provider
from providers.sandbox.wire import iso

Render = Callable[[], dict[str, Any] | None]
POSTFORME_EVENTS = (
    "social.post.created", "social.post.updated", "social.post.deleted",
    "social.post.result.created", "social.account.created", "social.account.updated",
)
LATE_EVENTS = (
    "post.scheduled", "post.published", "post.failed", "post.partial", "post.cancelled",
    "post.platform.published", "post.platform.failed", "post.platform.deleted",
    "account.connected", "account.disconnected",
)
LOG_SIZE = 5_000


@dataclass(frozen=True)
class Behaviour:
    """How one provider delivers: tries per event, seconds each try may take, and the
    wait before the second try (doubling after each, up to `max_backoff_seconds`)."""

    attempts: int
    timeout_seconds: float
    backoff_seconds: float
    max_backoff_seconds: float

    def check(self) -> Behaviour:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if self.timeout_seconds <= 0 or self.backoff_seconds < 0:
            raise ValueError("timeout_seconds must be > 0 and backoff_seconds >= 0")
        return self


DEFAULT_BEHAVIOUR = {
    "postforme": Behaviour(8, 1.0, 0.25, 2.0),  # 8 tries within a few seconds, 1 s each
    "late": Behaviour(5, 10.0, 1.0, 30.0),
}


@dataclass(frozen=True)
class Hook:
    """One registered endpoint of one API key."""

    id: str
    provider: str
    key: str = field(repr=False)
    url: str
    secret: str | None = field(repr=False)
    events: tuple[str, ...]
    name: str | None = None

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "provider": self.provider, "url": self.url,
                "events": list(self.events), "name": self.name}


@dataclass
class _Send:
    hook: Hook
    event: str
    render: Render
    event_id: str
    attempt: int = 0
    body: bytes | None = None


class Webhooks:
    """Registrations per provider and key, and the dispatcher that sends due events."""

    def __init__(self, changes: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """`changes`: per provider, behaviour fields that differ from the real service's
        for this object's life (reset() comes back to them)."""
        self._lock = threading.Condition()
        self._defaults = dict(DEFAULT_BEHAVIOUR)
        for provider, fields_ in (changes or {}).items():
            name = check_provider(provider)
            self._defaults[name] = _changed(self._defaults[name], fields_)
        self._behaviour = dict(self._defaults)
        self._hooks: dict[str, list[Hook]] = {p: [] for p in PROVIDERS}
        self._due: list[tuple[float, int, _Send]] = []
        self._seq = itertools.count()
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._stopping = False
        self._generation = 0  # reset() drops sends planned before it

    # -- registrations -------------------------------------------------------------------
    def register(self, provider: str, key: str, url: str, events: Iterable[str] = (),
                 secret: str | None = None, name: str | None = None) -> Hook:
        name_ = check_provider(provider)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        known = POSTFORME_EVENTS if name_ == "postforme" else LATE_EVENTS
        wanted = tuple(events)
        unknown = [e for e in wanted if e not in known]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(known)}")
        hook = Hook(f"wh_{new_token(8)}", name_, key, url, secret, wanted, name)
        with self._lock:
            self._hooks[name_].append(hook)
        return hook

    def hooks(self, provider: str, key: str) -> list[Hook]:
        with self._lock:
            return [h for h in self._hooks[check_provider(provider)] if h.key == key]

    def registered(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {p: [h.public() for h in hooks] for p, hooks in self._hooks.items()}

    def remove(self, provider: str, key: str, hook_id: str) -> bool:
        with self._lock:
            hooks = self._hooks[check_provider(provider)]
            kept = [h for h in hooks if not (h.key == key and h.id == hook_id)]
            self._hooks[provider] = kept
            return len(kept) != len(hooks)

    # -- behaviour and observation -------------------------------------------------------
    def set_behaviour(self, provider: str, **changes: Any) -> Behaviour:
        """Change tries / timeout / backoff for `provider` (fields not given stay)."""
        name = check_provider(provider)
        with self._lock:
            self._behaviour[name] = _changed(self._behaviour[name], changes)
            return self._behaviour[name]

    def behaviour(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {p: asdict(b) for p, b in self._behaviour.items()}

    def deliveries(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Every try so far, oldest first: provider, event, event_id, hook, url, attempt,
        status (None: no answer) and error."""
        with self._lock:
            return [dict(d) for d in self._log if provider is None or d["provider"] == provider]

    def reset(self) -> None:
        """Forget registrations, planned sends, the log and behaviour changes."""
        with self._lock:
            for hooks in self._hooks.values():
                hooks.clear()
            self._due.clear()
            self._log.clear()
            self._behaviour = dict(self._defaults)
            self._generation += 1

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            pool, self._pool = self._pool, None
            self._thread = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- emitting ------------------------------------------------------------------------
    def emit(self, provider: str, key: str, event: str, at: float, render: Render) -> int:
        """Plan `event` for every hook of `key` that wants it, to be rendered and sent at
        `at` (a Unix time; past means now). Returns how many sends were planned."""
        with self._lock:
            hooks = [h for h in self._hooks[provider] if h.key == key and h.wants(event)]
            for hook in hooks:
                send = _Send(hook, event, render, f"evt_{new_token(12)}")
                heapq.heappush(self._due, (at, next(self._seq), send))
            if hooks:
                self._ensure_running()
                self._lock.notify_all()
            return len(hooks)

    def _ensure_running(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-hook")
            self._thread = threading.Thread(target=self._run, name="sandbox-hooks",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    wait = self._due[0][0] - time.time() if self._due else None
                    if wait is not None and wait <= 0:
                        break
                    self._lock.wait(timeout=wait)
                if self._stopping:
                    return
                _, _, send = heapq.heappop(self._due)
                pool, generation = self._pool, self._generation
            if pool is not None:
                try:
                    pool.submit(self._deliver, send, generation)
                except RuntimeError:  # shut down meanwhile
                    return

    def _deliver(self, send: _Send, generation: int) -> None:
        if send.body is None:
            payload = send.render()
            if payload is None:
                return
            send.body = _envelope(send, payload)
        with self._lock:
            behaviour = self._behaviour[send.hook.provider]
        status, error = _post(send.hook.url, send.body, _headers(send), behaviour.timeout_seconds)
        with self._lock:
            if generation != self._generation:
                return
            self._log.append({
                "provider": send.hook.provider, "event": send.event, "event_id": send.event_id,
                "hook_id": send.hook.id, "url": send.hook.url, "attempt": send.attempt + 1,
                "status": status, "error": error, "at": iso(time.time()),
            })
            ok = status is not None and 200 <= status < 300
            if ok or send.attempt + 1 >= behaviour.attempts or self._stopping:
                return
            wait = min(behaviour.max_backoff_seconds,
                       behaviour.backoff_seconds * 2 ** send.attempt)
            send.attempt += 1
            heapq.heappush(self._due, (time.time() + wait, next(self._seq), send))
            self._lock.notify_all()


def _changed(behaviour: Behaviour, changes: Mapping[str, Any]) -> Behaviour:
    allowed = set(Behaviour.__dataclass_fields__)
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown webhook settings {sorted(unknown)}; known: {sorted(allowed)}")
    typed: dict[str, Any] = {}
    for k, v in changes.items():
        if v is None:
            continue
        try:
            typed[k] = int(v) if k == "attempts" else float(v)
        except (TypeError, ValueError):
            kind = "a whole number" if k == "attempts" else "a number"
            raise ValueError(f"{k}: must be {kind}, got {v!r}") from None
    return replace(behaviour, **typed).check()


def _envelope(send: _Send, payload: dict[str, Any]) -> bytes:
    """The body as each provider shapes it (rendered once: every retry sends it again)."""
    if send.hook.provider == "postforme":
        body: dict[str, Any] = {"event_type": send.event, "data": payload}
    else:
        body = {"id": send.event_id, "event": send.event, **payload,
                "timestamp": iso(time.time())}
    return json.dumps(body, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """LATE's signature: hex HMAC-SHA256 of the raw body with the endpoint's secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _headers(send: _Send) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": "sandbox-webhooks/1"}
    hook = send.hook
    if hook.provider == "postforme":
        if hook.secret:
            headers["Post-For-Me-Webhook-Secret"] = hook.secret
        return headers
    assert send.body is not None
    for brand in ("Zernio", "Late"):
        headers[f"X-{brand}-Event"] = send.event
        headers[f"X-{brand}-Event-Id"] = send.event_id
        if hook.secret:
            headers[f"X-{brand}-Signature"] = signature(hook.secret, send.body)
    return headers


def _post(url: str, body: bytes, headers: dict[str, str],
          timeout: float) -> tuple[int | None, str | None]:
    """(HTTP status or None, why it failed)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            answer.read()
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return None, type(exc).__name__ + (f": {exc.reason}" if isinstance(
            exc, urllib.error.URLError) else "")
