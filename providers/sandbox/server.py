"""SandboxServer: one stdlib HTTP/1.1 keep-alive server speaking PostForMe and LATE.

A thread per connection (ThreadingHTTPServer) keeps hangs and latency from blocking
other clients; each answer goes out in a single write with TCP_NODELAY so keep-alive
clients never wait on delayed ACKs; locks are held only around dict updates. The HTTP
side lives in providers.sandbox.handler; this module is the API tests and tools use:
lifecycle, keys, faults and observation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from providers.sandbox import late_api, postforme_api
from providers.sandbox.common import Context
from providers.sandbox.control import ControlApi
from providers.sandbox.faults import PROVIDERS, Faults, FaultSpec, check_provider
from providers.sandbox.late_api import LateApi
from providers.sandbox.listeners import Listener, check_mode
from providers.sandbox.media import MediaStore
from providers.sandbox.postforme_api import PostForMeApi
from providers.sandbox.rate_limits import DEFAULT_JITTER_SECONDS, Arrival, RateLimits
from providers.sandbox.state import Account, KeyRegistry, Recorder
from providers.sandbox.webhooks import Webhooks


def _account_dict(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "platform": account.platform,
        "username": account.username,
        "profile_id": account.profile_id,
        "external_id": account.external_id,
    }


class SandboxServer:
    """A local PostForMe (/postforme/v1) and LATE (/late/api/v1) with fault injection.

    Start it, register keys, optionally set faults, and point the real clients at
    `postforme_url` / `late_url`. State lives in memory; `reset()` forgets it all.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        accept_any_key: bool = False,
        duplicate_window_seconds: float = 86400.0,
        seed: int | None = None,
        postforme_refuse_local_media: bool = False,
        postforme_result_delay_seconds: float = 0.0,
        rate_limits: Mapping[str, str | None] | None = None,
        rate_limit_jitter_seconds: float = DEFAULT_JITTER_SECONDS,
        separate_ports: bool = False,
        postforme_port: int = 0,
        late_port: int = 0,
        webhook_behaviour: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """`postforme_refuse_local_media` makes PostForMe refuse localhost/IP media URLs
        for the server's whole life (reset() and set_faults() keep it), as the real one
        does; the `refuse_local_media` fault does the same until the next set_faults.
        `postforme_result_delay_seconds` is how long PostForMe's results take unless the
        `result_delay_seconds` fault says otherwise (0: at once, which the tests of the
        rest of the project rely on; the real service takes seconds).

        `rate_limits` turns on per-key limits for the server's life (reset() restores
        them), e.g. {"postforme": "5/second;40/minute", "late": "60/minute"}; off by
        default, which the rest of the test suite relies on. See rate_limits for what
        counts and `rate_limit_jitter_seconds`. `separate_ports` serves each provider on
        its own port (`postforme_port`, `late_port`; 0 = any free), so one can be made
        dead or black-holed (set_connection_mode); `url` stays the control port.
        `webhook_behaviour` changes how a provider sends webhooks for the server's life
        (per provider: attempts, timeout_seconds, backoff_seconds, max_backoff_seconds;
        see providers.sandbox.webhooks for the real services' defaults)."""
        if postforme_result_delay_seconds < 0:
            raise ValueError("postforme_result_delay_seconds must not be negative")
        self.host = host
        self._keys = KeyRegistry(accept_any_key=accept_any_key)
        self._faults = Faults(seed)
        self._recorder = Recorder()
        self._limits = RateLimits(rate_limits, rate_limit_jitter_seconds)
        self.media = MediaStore()
        self._webhooks = Webhooks(webhook_behaviour)
        self._ctx = Context(
            keys=self._keys,
            faults=self._faults,
            recorder=self._recorder,
            media=self.media,
            limits=self._limits,
            webhooks=self._webhooks,
            duplicate_window_seconds=duplicate_window_seconds,
            postforme_refuse_local_media=postforme_refuse_local_media,
            postforme_result_delay_seconds=postforme_result_delay_seconds,
        )
        self._postforme = PostForMeApi(self._ctx)
        self._late = LateApi(self._ctx)
        self._control = ControlApi(self)
        self._wake = threading.Event()
        self.separate_ports = separate_ports
        self._main = Listener(self, host, port)
        self._listeners: dict[str, Listener] = {}
        if separate_ports:
            self._listeners = {
                "postforme": Listener(self, host, postforme_port, "postforme"),
                "late": Listener(self, host, late_port, "late"),
            }

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> SandboxServer:
        """Bind, listen and serve in daemon threads; returns once connections are accepted."""
        if self._main.started:
            return self
        self._wake = threading.Event()
        self._main.start()
        try:
            for listener in self._listeners.values():
                listener.start()
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, wake hung handlers and drop open keep-alive connections."""
        if not self._main.started:
            return
        self._wake.set()
        self._webhooks.stop()
        for listener in [self._main, *self._listeners.values()]:
            listener.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget posts, keys, faults, pushed responses, stats, uploads and the log;
        connections left hanging by an earlier test are released. Rate limits go back to
        the constructor's (budgets and arrivals forgotten), every provider to "serve"."""
        old, self._wake = self._wake, threading.Event()
        old.set()
        self._keys.reset()
        self._faults.reset()
        self._recorder.reset()
        self._limits.reset()
        for listener in self._listeners.values():
            listener.set_mode("serve")
        self.media.clear()
        self._webhooks.reset()
        self._postforme.reset()
        self._late.reset()

    # -- addresses ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The main (control) port; with separate_ports the providers' are in
        postforme_url / late_url."""
        return self._main.port

    def _base(self, port: int) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        return self._base(self.port)

    def _provider_base(self, provider: str) -> str:
        listener = self._listeners.get(provider)
        return self.url if listener is None else self._base(listener.port)

    @property
    def postforme_url(self) -> str:
        return self._provider_base("postforme") + postforme_api.PREFIX

    @property
    def late_url(self) -> str:
        return self._provider_base("late") + late_api.PREFIX

    # -- keys --------------------------------------------------------------------------
    def register_key(
        self, provider: str, key: str, platforms: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        """Connect one account per platform (all nine when None) to `key`; returns the
        accounts as {id, platform, username, profile_id} (platform is the seed name)."""
        if isinstance(platforms, str):
            platforms = [p for p in platforms.split(",") if p.strip()]
        return [_account_dict(a) for a in self._keys.register(provider, key, platforms)]

    def add_account(
        self,
        provider: str,
        key: str,
        platform: str,
        *,
        external_id: str | None = None,
        profile: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Connect one more `platform` account to `key` (several per platform are fine):
        PostForMe's tagged with `external_id`, LATE's in the profile named `profile`
        (created when missing). Returns {id, platform, username, profile_id, external_id}."""
        account = self._keys.add_account(
            provider, key, platform, external_id=external_id, profile=profile, username=username
        )
        return _account_dict(account)

    def add_profile(self, key: str, name: str) -> str:
        """A new LATE profile named `name` under `key`; returns its id."""
        return self._keys.add_profile("late", key, name)

    def revoke_key(self, provider: str, key: str) -> None:
        """The key answers 401 from now on."""
        self._keys.revoke(provider, key)

    # -- faults ------------------------------------------------------------------------
    def set_faults(self, provider: str, **spec: Any) -> None:
        """Replace the provider's random faults (fields not given go back to healthy)."""
        name = check_provider(provider)
        self._faults.set(name, FaultSpec.from_mapping(spec, name))

    def get_faults(self) -> dict[str, Any]:
        """Both providers' fault specs plus how many pushed responses are pending."""
        return self._faults.snapshot()

    def push_responses(self, provider: str, responses: Iterable[Mapping[str, Any]]) -> int:
        """Queue scripted answers for the next create-post requests; returns the queue length.
        Keys (see faults.Decision.from_entry): status, retry_after, message, body, pass,
        hang, hang_seconds, create_then_status (stored, then 5xx), delay_seconds."""
        return self._faults.push(provider, responses)

    def pending_responses(self, provider: str) -> int:
        return self._faults.pending(provider)

    def seed(self, seed: int | None) -> None:
        """Reseed the fault RNG (reset() restarts from the latest seed)."""
        self._faults.seed(seed)

    # -- rate limits and connections ---------------------------------------------------
    def set_rate_limits(self, provider: str, spec: str | None) -> None:
        """Per-key limits for `provider` from now on, e.g. "5/second;40/minute" (the
        `limits` syntax); None or "none" turns them off. Its budgets start afresh."""
        self._limits.set(provider, spec)

    def rate_limits(self) -> dict[str, Any]:
        """{"postforme": spec | None, "late": spec | None, "jitter_seconds": float}."""
        return self._limits.specs()

    def set_connection_mode(self, provider: str, mode: str) -> None:
        """"serve", "refuse" (a dead provider: ECONNREFUSED) or "blackhole" (connects
        time out); open connections to the provider are dropped. Needs separate_ports."""
        name = check_provider(provider)
        check_mode(mode)
        listener = self._listeners.get(name)
        if listener is None:
            raise ValueError("connection modes need SandboxServer(separate_ports=True)")
        listener.set_mode(mode)

    def connections(self) -> dict[str, Any]:
        """Per provider {"mode", "url"}, and "separate_ports" (whether modes apply)."""
        out: dict[str, Any] = {"separate_ports": self.separate_ports}
        for name in PROVIDERS:
            listener = self._listeners.get(name)
            url = self.postforme_url if name == "postforme" else self.late_url
            out[name] = {"mode": listener.mode if listener else "serve", "url": url}
        return out

    # -- webhooks ----------------------------------------------------------------------
    def set_webhook_behaviour(self, provider: str, **changes: Any) -> dict[str, Any]:
        """How `provider` sends webhooks until the next reset: attempts, timeout_seconds,
        backoff_seconds, max_backoff_seconds. Returns the provider's behaviour."""
        self._webhooks.set_behaviour(provider, **changes)
        return self._webhooks.behaviour()[check_provider(provider)]

    def webhook_deliveries(self, provider: str | None = None) -> list[dict[str, Any]]:
        """Every webhook try so far, oldest first (provider, event, event_id, url,
        attempt, status, error)."""
        return self._webhooks.deliveries(provider and check_provider(provider))

    def webhooks(self) -> dict[str, Any]:
        """Registered endpoints per provider (never their secrets) and the behaviour."""
        return {"behaviour": self._webhooks.behaviour(),
                "hooks": self._webhooks.registered()}

    # -- observation -------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Requests, create requests and creates per provider (429s from the rate limits:
        rate_limited())."""
        return self._recorder.stats()

    def creates(self, provider: str) -> int:
        """Posts really created at `provider` since the last reset: stats()'s count alone,
        cheap enough to poll (stats() copies every post's id)."""
        return self._recorder.creates(provider)

    def arrivals(self, provider: str | None = None, api_key: str | None = None) -> list[Arrival]:
        """Every API request the gateways saw (the last 50,000), oldest first; one
        provider's, one key's. Arrival.time is time.monotonic(); rate_limited marks the
        429s from the limits, which did not count toward them."""
        return self._limits.arrivals(provider, api_key)

    def rate_limited(self, provider: str) -> int:
        """How many requests `provider`'s rate limits answered 429 since the last reset."""
        return self._limits.rate_limited(provider)

    def created_targets(self) -> dict[str, list[tuple[str | None, str]]]:
        """Per provider, (idempotency key, platform) of every post it holds: one pair per
        account the post went to, so a caller can tell which platform got what."""
        return {
            "postforme": self._postforme.created_targets(),
            "late": self._late.created_targets(),
        }

    def created_accounts(self) -> dict[str, list[tuple[str | None, str, str]]]:
        """Per provider, (idempotency key, platform, account id) of every post it holds:
        which account each create went to."""
        return {
            "postforme": self._postforme.created_accounts(),
            "late": self._late.created_accounts(),
        }

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The last 20,000 API requests, oldest first (key hints only, never keys)."""
        if provider is not None:
            provider = check_provider(provider)
        return self._recorder.requests(provider)
