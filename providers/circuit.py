"""A circuit breaker per provider base URL, shared by the fleet through Redis.

Why: a dead primary costs every post a connect timeout (or several) before it falls
over. After SOCIALPOST_CIRCUIT_FAILURES connect failures or 5xx answers in a row from
one base URL, its circuit opens for SOCIALPOST_CIRCUIT_COOLDOWN seconds: the engine
then skips that provider's steps for targets that were never sent there (the next
step serves them at once), and a call that must still go there (a lookup of an
unresolved send, a background poll) is deferred, not sent. After the cool-down exactly
one call (the probe: a SET NX lock) goes through; an answer closes the circuit, a
failure opens it again. A few lines over the pacer's Redis (state: three keys per URL,
named by digest), rather than a library whose state lives in one process.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

import settings
from providers.pacing import Denied, pacer

PREFIX = "socialpost:circuit"


@dataclass(frozen=True)
class Open:
    """An open circuit: since when, and until when no call may probe it."""

    since: float
    until: float

    def reason(self, name: str) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.since))
        return f"{name} unavailable (circuit open since {since})"


def _id(base_url: str) -> str:
    return hashlib.sha256(base_url.encode()).hexdigest()[:20]


def _keys(base_url: str) -> tuple[str, str, str]:
    i = _id(base_url)
    return f"{PREFIX}:open:{i}", f"{PREFIX}:fails:{i}", f"{PREFIX}:probe:{i}"


def _redis() -> Any:
    return pacer().redis


def _parse(value: bytes | str | None) -> Open | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    since, _, until = text.partition("|")
    try:
        return Open(float(since), float(until))
    except ValueError:
        return None


def state(base_url: str) -> tuple[Open | None, bool]:
    """(the open circuit or None, whether a probe is in flight)."""
    open_key, _, probe_key = _keys(base_url)
    try:
        value, probing = _redis().mget(open_key, probe_key)
    except RedisError:
        return None, False
    return _parse(value), probing is not None


_seen: dict[str, tuple[float, Open | None]] = {}
SEEN_FOR = 0.5  # seconds a process reuses what it last read of a circuit


def is_open(base_url: str) -> Open | None:
    """The open circuit when calls should not go to `base_url` now: inside the cool-down,
    or past it while another call probes. None when a call may go (closed, or the probe
    is free for the taking). What a process read is reused for half a second (the engine
    asks for every post): a circuit seen a moment late costs one more call held back at
    the HTTP layer (circuit.admit always reads Redis) or one more skip, never a send."""
    now = time.monotonic()
    cached = _seen.get(base_url)
    if cached is not None and now - cached[0] < SEEN_FOR:
        return cached[1]
    found, probing = state(base_url)
    result = found if found is not None and (time.time() < found.until or probing) else None
    _seen[base_url] = (now, result)
    return result


def admit_keys(base_url: str) -> tuple[str, str]:
    """The keys `admit` reads, for a caller that reads them with others in one MGET."""
    open_key, fails_key, _ = _keys(base_url)
    return open_key, fails_key


def admit(base_url: str, name: str, probe_seconds: float,
          read: tuple[Any, Any] | None = None) -> bool:
    """Before a call: raise Denied while the circuit is open. True when there is trouble
    to clear if the call gets an answer (failures counted, or this call is the probe).
    `read`: the values of `admit_keys`, when the caller has just read them."""
    open_key, fails_key, probe_key = _keys(base_url)
    try:
        value, fails = read if read is not None else _redis().mget(open_key, fails_key)
        found = _parse(value)
        if found is None:
            return fails is not None
        now = time.time()
        if now < found.until:
            raise Denied(found.until - now + random.uniform(0, 1), found.reason(name))
        if _redis().set(probe_key, "1", nx=True, px=int(probe_seconds * 1000) + 1000):
            return True
        raise Denied(1.0 + random.uniform(0, 1), found.reason(name))
    except RedisError:
        return False


def failed(base_url: str) -> None:
    """A connect failure or a 5xx from `base_url`: count it; open (or re-open) the circuit."""
    s = settings.current()
    open_key, fails_key, probe_key = _keys(base_url)
    now = time.time()
    try:
        r = _redis()
        found = _parse(r.get(open_key))
        if found is not None:  # the probe failed (or a call raced it): another cool-down
            if now >= found.until:
                r.set(open_key, f"{found.since!r}|{now + s.circuit_cooldown!r}")
                r.delete(probe_key)
            return
        pipe = r.pipeline()
        pipe.incr(fails_key)
        pipe.expire(fails_key, max(60, int(s.circuit_cooldown * 4)))
        count = int(pipe.execute()[0])
        if count >= s.circuit_failures:
            r.set(open_key, f"{now!r}|{now + s.circuit_cooldown!r}", nx=True)
    except RedisError:
        return


def answered(base_url: str, seen_trouble: bool) -> None:
    """An answer below 500 from `base_url`: the provider is up. Clears the failure count
    and closes an open circuit; `seen_trouble` False (no failure counted, no circuit open
    when the call started) skips the write on the hot path."""
    if not seen_trouble:
        return
    try:
        _redis().delete(*_keys(base_url))
    except RedisError:
        return
