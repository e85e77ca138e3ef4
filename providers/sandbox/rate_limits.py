"""The providers' gateways: per-key rate limits, and a log of every API arrival.

Why a small explicit model instead of the `limits` library's counters: this is a fake of
the provider's gateway, and tests must be able to reason about exactly what it counts.
Specs are read with `limits.parse_many` (`5/second;40/minute`, `20 per 10 seconds`) so
they are written as our client's limiter settings are; counting is a sliding log of
arrival times per (provider, key). A request at monotonic time t is over a limit of N
per W seconds when ≥ N counted arrivals lie in (t − W + jitter, t]: a real gateway's
clock forgives a little arrival jitter. Every request with a bearer key counts (valid or
not, any route); a request answered 429 here does not.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from bisect import bisect_right, insort
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import limits

from providers.sandbox.faults import PROVIDERS, check_provider

ARRIVAL_LOG_SIZE = 50_000
DEFAULT_JITTER_SECONDS = 0.1
OFF = frozenset({"", "none", "off"})


@dataclass(frozen=True)
class Limit:
    """N requests per `seconds`; `name` is what PostForMe's X-Rate-Limit-Name says."""

    amount: int
    seconds: float
    name: str


def parse_limits(spec: str | None) -> tuple[Limit, ...]:
    """The limits of a spec, shortest window first; () for None, '' or 'none'."""
    if spec is None or spec.strip().lower() in OFF:
        return ()
    try:
        items = limits.parse_many(spec)
    except ValueError:
        raise ValueError(
            f"rate limits must read like '5/second;40/minute', got {spec!r}") from None
    out = []
    for item in items:
        unit = item.GRANULARITY.name
        name = unit if item.multiples == 1 else f"{item.multiples} {unit}s"
        out.append(Limit(int(item.amount), float(item.get_expiry()), name))
    if not out or any(limit.amount < 1 for limit in out):
        raise ValueError(f"rate limits must allow at least one request, got {spec!r}")
    return tuple(sorted(out, key=lambda limit: limit.seconds))


@dataclass(frozen=True)
class Verdict:
    """The gateway's answer to one arrival, for its headers. `limit` is the binding one:
    the limit refused (the longest wait if several), else the one with least left."""

    allowed: bool
    limit: Limit
    remaining: int  # after this request; 0 on a refusal
    reset_after: float  # seconds until that window frees a slot (> 0)

    @property
    def retry_after(self) -> int:
        """Whole seconds, rounded up, at least 1."""
        return max(1, math.ceil(self.reset_after - 1e-9))

    def reset_at(self) -> int:
        """The Unix second at which that window frees a slot (rounded up)."""
        return math.ceil(time.time() + self.reset_after)


@dataclass(frozen=True)
class Arrival:
    """One API request as the provider's gateway saw it. `time` is time.monotonic()
    (the system-wide clock the limiter counts with; comparable across processes on one
    machine), `wall_time` time.time(). `status` is None for a request never answered
    (a hang). `key_label` is the key's hint (last 4 characters), never the key.
    `rate_limited`: answered 429 by the limits here (it did not count toward them);
    every other arrival with a key counted while the provider's limits were on."""

    provider: str
    time: float
    wall_time: float
    method: str
    path: str
    status: int | None
    key_label: str | None
    rate_limited: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class RateLimits:
    """Both providers' gateways: their limit specs, sliding logs and arrival log."""

    def __init__(
        self,
        specs: Mapping[str, str | None] | None = None,
        jitter_seconds: float = DEFAULT_JITTER_SECONDS,
    ) -> None:
        if not 0 <= jitter_seconds < 1:
            raise ValueError("rate limit jitter must be at least 0 and under 1 second")
        self.jitter = float(jitter_seconds)
        self._lock = threading.Lock()
        self._initial: dict[str, str | None] = dict.fromkeys(PROVIDERS)
        for provider, spec in (specs or {}).items():
            parse_limits(spec)
            self._initial[check_provider(provider)] = spec
        self._specs = dict(self._initial)
        self._limits = {p: parse_limits(s) for p, s in self._specs.items()}
        self._logs: dict[tuple[str, str], list[float]] = {}
        self._arrivals: deque[tuple[str | None, Arrival]] = deque(maxlen=ARRIVAL_LOG_SIZE)
        self._refused: Counter[str] = Counter()

    # -- settings ------------------------------------------------------------------------
    def set(self, provider: str, spec: str | None) -> None:
        """Replace a provider's limits (None or 'none': off); its budgets start afresh."""
        name = check_provider(provider)
        parsed = parse_limits(spec)
        with self._lock:
            self._specs[name] = None if not parsed else spec
            self._limits[name] = parsed
            for log_key in [k for k in self._logs if k[0] == name]:
                del self._logs[log_key]

    def specs(self) -> dict[str, Any]:
        with self._lock:
            return {**self._specs, "jitter_seconds": self.jitter}

    def reset(self) -> None:
        """Back to the constructor's limits; budgets, arrivals and refusals forgotten."""
        with self._lock:
            self._specs = dict(self._initial)
            self._limits = {p: parse_limits(s) for p, s in self._specs.items()}
            self._logs.clear()
            self._arrivals.clear()
            self._refused.clear()

    # -- the gateway ---------------------------------------------------------------------
    def admit(self, provider: str, key: str | None, now: float) -> Verdict | None:
        """Count one arrival at monotonic time `now`; None when the provider has no
        limits or the request names no key (nothing to count it against)."""
        limits_ = self._limits.get(provider, ())
        if not limits_ or not key:
            return None
        with self._lock:
            limits_ = self._limits[provider]
            if not limits_:
                return None
            log = self._logs.setdefault((provider, _digest(key)), [])
            horizon = now - limits_[-1].seconds + self.jitter
            del log[: bisect_right(log, horizon)]
            refused: Verdict | None = None
            for limit in limits_:
                start = bisect_right(log, now - limit.seconds + self.jitter)
                inside = bisect_right(log, now) - start
                if inside >= limit.amount:
                    # the slot frees when the arrival that keeps the count at N leaves
                    frees = log[start + inside - limit.amount] + limit.seconds - self.jitter
                    verdict = Verdict(False, limit, 0, max(frees - now, 1e-3))
                    if refused is None or verdict.reset_after > refused.reset_after:
                        refused = verdict
            if refused is not None:
                self._refused[provider] += 1
                return refused
            insort(log, now)
            best: Verdict | None = None
            for limit in limits_:
                start = bisect_right(log, now - limit.seconds + self.jitter)
                inside = bisect_right(log, now) - start
                frees = log[start] + limit.seconds - self.jitter
                verdict = Verdict(True, limit, limit.amount - inside, max(frees - now, 1e-3))
                if best is None or (verdict.remaining, -verdict.reset_after) < (
                    best.remaining, -best.reset_after
                ):
                    best = verdict
            return best

    # -- observation ---------------------------------------------------------------------
    def record(self, arrival: Arrival, key: str | None) -> None:
        with self._lock:
            self._arrivals.append((_digest(key) if key else None, arrival))

    def arrivals(self, provider: str | None = None, api_key: str | None = None) -> list[Arrival]:
        """The last 50,000 arrivals, oldest first; optionally one provider's, one key's."""
        name = check_provider(provider) if provider is not None else None
        digest = _digest(api_key) if api_key else None
        with self._lock:
            return [
                a for d, a in self._arrivals
                if (name is None or a.provider == name) and (digest is None or d == digest)
            ]

    def rate_limited(self, provider: str) -> int:
        """How many requests the provider's limits answered 429 since the last reset."""
        with self._lock:
            return self._refused[check_provider(provider)]
