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
The outcome faults (results late, duplicated or never, LATE targets pending or
regressing) act after the create; the post stores draw their rates from the same RNG
through `Faults.draw`. The settings themselves are in fault_spec.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from providers.sandbox.fault_spec import (
    ERROR_CLASSES,
    PLATFORMS,
    PROVIDERS,
    FaultSpec,
    _as_bool,
    _non_negative,
    _status,
    canonical_platform,
    check_provider,
    parse_fault_flag,
)

__all__ = [
    "ERROR_CLASSES",
    "PLATFORMS",
    "PROVIDERS",
    "Decision",
    "FaultSpec",
    "Faults",
    "canonical_platform",
    "check_provider",
    "parse_fault_flag",
]

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

    def draw(self, rate: float) -> bool:
        """True with probability `rate`; a rate of 0 draws nothing (seeded runs
        without outcome faults replay as before)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                p: {**self._specs[p].to_dict(), "pending_responses": len(self._queues[p])}
                for p in PROVIDERS
            }
