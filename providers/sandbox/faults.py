"""Fault injection: what the next create-post of a provider experiences.

Two sources, consulted in this order for every create-post request:
1. a deterministic queue of pushed responses (one entry consumed per request), so a
   test can script "503, then 429, then success" exactly;
2. the provider's random fault spec (rates drawn from one seedable RNG), for soak
   tests, demos and benchmarks.
`latency_ms` and `missing_platforms` apply to every API route of the provider.

Some faults lose nothing, some lose only the answer, as the real services do:
- error / rate_limit / plan limit: refused before anything is stored;
- hang: the post IS stored (it will publish), then no answer; the connection closes
  after `hang_seconds` (0 = cut at once), or when the sandbox resets or stops;
- create_then_error: the post IS stored, then a 5xx answers (a load balancer, or a
  crash after the row was written);
- create delay: the post IS stored at once, the answer comes `delay_seconds` later,
  so a lookup made meanwhile already sees it.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

PROVIDERS = ("postforme", "late")
PLATFORMS = (
    "twitter",
    "linkedin",
    "instagram",
    "facebook",
    "tiktok",
    "threads",
    "bluesky",
    "youtube",
    "pinterest",
)


def check_provider(provider: str) -> str:
    """Normalise a provider name or raise ValueError naming the valid ones."""
    name = str(provider).strip().lower()
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: use 'postforme' or 'late'")
    return name


def canonical_platform(name: str) -> str:
    """PostForMe calls Twitter 'x'; internally every platform has its seed name."""
    value = str(name).strip().lower()
    if value == "x":
        value = "twitter"
    if value not in PLATFORMS:
        raise ValueError(f"unknown platform {name!r}: use one of {', '.join(PLATFORMS)}")
    return value


def _platform_set(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, Iterable):
        raise ValueError("platform lists must be a list or a comma-separated string")
    return frozenset(canonical_platform(p) for p in value)


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _rate(name: str, value: Any) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return rate


def _non_negative(name: str, value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def _status(name: str, value: Any, low: int = 100) -> int:
    status = int(value)
    if not low <= status <= 599:
        what = "a 5xx status" if low == 500 else "an HTTP status"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return status


# Faults only one real service has: setting them on the other is a test's mistake.
ONLY_FOR = {"refuse_local_media": "postforme", "plan_limit_rate": "late"}
_RATES = ("error_rate", "rate_limit_rate", "hang_rate", "create_then_error_rate", "plan_limit_rate")
_SECONDS = ("latency_ms", "retry_after", "hang_seconds", "create_delay_seconds")


@dataclass(frozen=True)
class FaultSpec:
    """One provider's random faults. Zero everywhere means a healthy provider."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    missing_platforms: frozenset[str] = field(default_factory=frozenset)
    fail_platforms: frozenset[str] = field(default_factory=frozenset)
    seed_shapes: bool = False
    # The post is stored, then a 5xx answers (it will publish all the same).
    create_then_error_rate: float = 0.0
    create_then_error_status: int = 502
    # Every stored create answers this many seconds late (0 = at once).
    create_delay_seconds: float = 0.0
    # PostForMe: refuse media URLs on localhost, *.localhost or any IP (400), as the
    # real create does; off so local tests can serve media from loopback.
    refuse_local_media: bool = False
    # LATE: 403 permission_error "Plan limit reached: ..." (not a bad key).
    plan_limit_rate: float = 0.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], provider: str | None = None) -> FaultSpec:
        """Validate and coerce (strings are accepted, for CLI flags and query strings);
        with `provider`, also refuse faults the other provider alone has."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s) {unknown}: use {sorted(known)}")
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name in _RATES:
                values[name] = _rate(name, raw)
            elif name in _SECONDS:
                values[name] = _non_negative(name, raw)
            elif name == "error_status":
                values[name] = _status(name, raw)
            elif name == "create_then_error_status":
                values[name] = _status(name, raw, low=500)
            elif name in ("missing_platforms", "fail_platforms"):
                values[name] = _platform_set(raw)
            else:
                values[name] = _as_bool(raw)
        spec = cls(**values)
        if provider is not None:
            spec.check_for(provider)
        return spec

    def check_for(self, provider: str) -> None:
        """Refuse a fault only the other provider has (the real one never does it)."""
        healthy = FaultSpec()
        for name, owner in ONLY_FOR.items():
            if owner != provider and getattr(self, name) != getattr(healthy, name):
                raise ValueError(f"{name} is a {owner} fault, not a {provider} one")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["missing_platforms"] = sorted(self.missing_platforms)
        data["fail_platforms"] = sorted(self.fail_platforms)
        return data


def parse_fault_flag(text: str) -> tuple[str, str, str]:
    """Split a CLI flag 'postforme:error_rate=0.3' into (provider, field, value)."""
    provider, sep, assignment = text.partition(":")
    name, eq, value = assignment.partition("=")
    if not sep or not eq or not name.strip():
        raise ValueError(f"bad fault {text!r}: expected PROVIDER:FIELD=VALUE")
    return check_provider(provider), name.strip(), value.strip()


Kind = Literal["pass", "error", "rate_limit", "hang", "create_then_error"]

_PUSH_FIELDS = {
    "status",
    "retry_after",
    "hang",
    "hang_seconds",
    "message",
    "body",
    "pass",
    "create_then_status",
    "delay_seconds",
}


@dataclass(frozen=True)
class Decision:
    """What to do with one create-post request."""

    kind: Kind = "pass"
    status: int = 0
    retry_after: float = 1.0
    hang_seconds: float = 30.0
    message: str | None = None
    body: Any = None
    delay_seconds: float | None = None  # None: the spec's create_delay_seconds at create time

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any], spec: FaultSpec) -> Decision:
        """A pushed entry: {"status": 503} | {"status": 429, "retry_after": 2} |
        {"hang": true, "hang_seconds"?} | {"status": 201} (pass) | {"pass": true} |
        {"create_then_status": 504} (stored, then a 5xx) | {"delay_seconds": 3} (stored,
        answered 3 s later; combines with pass, 2xx and create_then_status)."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"a pushed response must be an object, got {entry!r}")
        unknown = sorted(set(entry) - _PUSH_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown pushed-response field(s) {unknown}: use {sorted(_PUSH_FIELDS)}"
            )
        hang_seconds = _non_negative("hang_seconds", entry.get("hang_seconds", spec.hang_seconds))
        delay: float | None = None
        if "delay_seconds" in entry:
            delay = _non_negative("delay_seconds", entry["delay_seconds"])
        message = entry.get("message")
        if _as_bool(entry.get("hang", False)):
            if delay is not None or "create_then_status" in entry:
                raise ValueError(f"'hang' never answers: drop the other fields of {entry!r}")
            return cls(kind="hang", hang_seconds=hang_seconds)
        if "create_then_status" in entry:
            if "status" in entry:
                raise ValueError(f"give 'status' or 'create_then_status', not both: {entry!r}")
            return cls(
                kind="create_then_error",
                status=_status("create_then_status", entry["create_then_status"], low=500),
                message=None if message is None else str(message),
                body=entry.get("body"),
                delay_seconds=delay,
            )
        if _as_bool(entry.get("pass", False)) or ("status" not in entry and delay is not None):
            return cls(kind="pass", delay_seconds=delay)
        if "status" not in entry:
            raise ValueError(
                f"a pushed response needs 'status', 'create_then_status', 'delay_seconds', "
                f"'hang' or 'pass': {entry!r}"
            )
        status = _status("status", entry["status"])
        if status < 300:
            return cls(kind="pass", delay_seconds=delay)
        if delay is not None:
            raise ValueError(f"'delay_seconds' is for creates that are stored: {entry!r}")
        retry_after = _non_negative("retry_after", entry.get("retry_after", spec.retry_after))
        kind: Kind = "rate_limit" if status == 429 else "error"
        return cls(
            kind=kind,
            status=status,
            retry_after=retry_after,
            message=None if message is None else str(message),
            body=entry.get("body"),
        )


PASS = Decision()


class Faults:
    """Fault specs and pushed queues of both providers, behind one lock."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rng = random.Random(seed)
        self._specs: dict[str, FaultSpec] = {p: FaultSpec() for p in PROVIDERS}
        self._queues: dict[str, deque[Decision]] = {p: deque() for p in PROVIDERS}

    def reset(self) -> None:
        """Back to healthy providers; the RNG restarts from the seed for reproducibility."""
        with self._lock:
            self._rng = random.Random(self._seed)
            self._specs = {p: FaultSpec() for p in PROVIDERS}
            for queue in self._queues.values():
                queue.clear()

    def seed(self, seed: int | None) -> None:
        with self._lock:
            self._seed = seed
            self._rng = random.Random(seed)

    def set(self, provider: str, spec: FaultSpec) -> None:
        name = check_provider(provider)
        spec.check_for(name)
        with self._lock:
            self._specs[name] = spec

    def spec(self, provider: str) -> FaultSpec:
        return self._specs[provider]  # replaced atomically, never mutated

    def push(self, provider: str, entries: Iterable[Mapping[str, Any]]) -> int:
        """Append scripted responses; all are validated before any is queued."""
        name = check_provider(provider)
        spec = self._specs[name]
        decisions = [Decision.from_entry(entry, spec) for entry in entries]
        with self._lock:
            self._queues[name].extend(decisions)
            return len(self._queues[name])

    def pending(self, provider: str) -> int:
        with self._lock:
            return len(self._queues[check_provider(provider)])

    def decide_create(self, provider: str) -> Decision:
        """The fate of one create-post: the queue first, then the random rates, drawn in
        this order, each only if the earlier did not fire (a rate of 0 draws nothing, so
        seeded runs without the newer faults replay exactly as before)."""
        with self._lock:
            queue = self._queues[provider]
            if queue:
                return queue.popleft()
            spec = self._specs[provider]
            if spec.rate_limit_rate and self._rng.random() < spec.rate_limit_rate:
                return Decision(kind="rate_limit", status=429, retry_after=spec.retry_after)
            if spec.error_rate and self._rng.random() < spec.error_rate:
                return Decision(kind="error", status=spec.error_status)
            if spec.hang_rate and self._rng.random() < spec.hang_rate:
                return Decision(kind="hang", hang_seconds=spec.hang_seconds)
            if spec.plan_limit_rate and self._rng.random() < spec.plan_limit_rate:
                return Decision(kind="error", status=403)
            if spec.create_then_error_rate and self._rng.random() < spec.create_then_error_rate:
                return Decision(kind="create_then_error", status=spec.create_then_error_status)
        return PASS

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                p: {**self._specs[p].to_dict(), "pending_responses": len(self._queues[p])}
                for p in PROVIDERS
            }
