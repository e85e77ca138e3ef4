"""Fleet-wide pacing of provider calls: one budget per provider key, shared in Redis.

Why: PostForMe allows 5 requests a second and 40 a minute per key, LATE 60 to 1,200 a
minute; a fleet that learns of that only from 429s storms the key and spills posts to the
fallback provider by accident. Every call through a key (create, lookup, results,
accounts, media) takes a permit from the key's moving windows (the `limits` library, on
the broker's Redis) before it is sent; a call without one is not sent and raises
`Denied` with the wait, which the engine turns into a deferred attempt (no worker slot
is held while waiting).

- **Creates first.** Calls made inside `background()` (results polling, account
  refreshes) draw from a share of each window as well (SOCIALPOST_BACKGROUND_SHARE), and
  yield half of it while creates wait in line (never all: confirmations of a long
  campaign's first posts must not wait for its last).
- **Fair line.** A create that finds the window spent takes the next slot of the key's
  line (a time, spaced by the steady rate, kept in Redis), so posts released in the same
  second are served one after another instead of stampeding at each freed permit. At its
  slot it tries again (`waited=True`) and, if still unlucky, only waits for the next
  free permit.
- **The provider's word wins.** A 429's Retry-After (or X-Rate-Limit-Reset, seconds) and
  LATE's X-RateLimit-Remaining: 0 with X-RateLimit-Reset (a Unix time) block the key
  fleet-wide until then (`observe`).

Keys are named in Redis by a digest, never the key. When Redis cannot be reached the
limiter lets calls through (logged): the provider's own 429 still protects, and a 429 is
proof nothing was created.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

import settings
from providers.http import header, retry_after_seconds
from providers.limits_syntax import parse_limits

log = logging.getLogger("providers.pacing")

PREFIX = "socialpost:pace"
DISPLAY = {"postforme": "PostForMe", "late": "LATE"}
# A line slot is forgotten this long after it passed (nobody waits behind it any more).
_LINE_TTL = 3600
_BACKGROUND_YIELD = 1.0  # seconds a background call waits while creates are in line


class Priority(str, Enum):
    CREATE = "create"  # everything a publish attempt calls: first in line
    BACKGROUND = "background"  # polling and refreshes: a capped share, yields to creates


@dataclass(frozen=True)
class CallContext:
    priority: Priority = Priority.CREATE
    waited: bool = False  # this attempt already waited in the key's line


_DEFAULT = CallContext()
_context: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "socialpost_pacing", default=None)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Calls made inside are background calls (see the module docstring)."""
    token = _context.set(CallContext(Priority.BACKGROUND))
    try:
        yield
    finally:
        _context.reset(token)


@contextlib.contextmanager
def attempt(*, waited: bool) -> Iterator[None]:
    """Calls made inside belong to one publish attempt; `waited`: it already took its
    place in the line once (it tries for a permit instead of queueing again)."""
    token = _context.set(CallContext(Priority.CREATE, waited))
    try:
        yield
    finally:
        _context.reset(token)


def current() -> CallContext:
    """The calling context's priority (a create unless inside `background()`)."""
    return _context.get() or _DEFAULT


def current_priority() -> Priority:
    return current().priority


class Denied(Exception):
    """No permit: nothing was sent. `wait` is when to try again (seconds, jitter in)."""

    def __init__(self, wait: float, reason: str) -> None:
        super().__init__(reason)
        self.wait = max(0.0, wait)
        self.reason = reason


def key_id(api_key: str) -> str:
    """How a key is named in Redis: a digest, never the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Budget:
    """One provider's per-key limits (shortest window first) and the background share."""

    limits: tuple[RateLimitItem, ...]
    background: tuple[RateLimitItem, ...]
    spacing: float  # seconds between creates at the steady rate (the tightest window)
    # While creates wait in line, background calls yield half their share: confirmations
    # still trickle in during a long campaign (never starved), creates keep the rest.
    background_busy: tuple[RateLimitItem, ...] = ()

    @classmethod
    def of(cls, spec: str, share: float) -> Budget | None:
        items = parse_limits(spec)
        if not items:
            return None
        if share <= 0:
            return cls(items, (), max(i.get_expiry() / i.amount for i in items))
        shared = tuple(type(i)(max(1, int(i.amount * share)), i.multiples) for i in items)
        busy = tuple(type(i)(max(1, int(i.amount * share / 2)), i.multiples) for i in items)
        spacing = max(i.get_expiry() / i.amount for i in items)
        return cls(items, shared, spacing, busy)

    def describe(self) -> str:
        return ";".join(f"{i.amount}/{i.multiples if i.multiples > 1 else ''}"
                        f"{i.GRANULARITY.name}" for i in self.limits)


_LINE = """
local line = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(tonumber(ARGV[1]), line)
redis.call('SET', KEYS[1], tostring(slot + tonumber(ARGV[2])), 'EX', ARGV[3])
return tostring(slot)
"""


class Pacer:
    """The fleet's budgets on one Redis (see the module docstring)."""

    def __init__(self, redis_url: str, budgets: Mapping[str, Budget | None]) -> None:
        self._storage = RedisStorage(redis_url, key_prefix=f"{PREFIX}:w",
                                     socket_timeout=2, socket_connect_timeout=2)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._redis: Any = self._storage.get_connection()
        self._line = self._redis.register_script(_LINE.encode())
        self._budgets = dict(budgets)
        self._warned = 0.0

    @property
    def redis(self) -> Any:
        return self._redis

    @property
    def limiter(self) -> MovingWindowRateLimiter:
        return self._limiter

    def budget(self, provider: str) -> Budget | None:
        return self._budgets.get(provider)

    # -- taking permits ------------------------------------------------------------------
    def read_with(self, provider: str, api_key: str, others: tuple[str, ...]) -> list[Any]:
        """What `admit` reads first (the key's block and line), followed by `others` (the
        circuit's keys): one round trip for both. Raises RedisError."""
        kid = key_id(api_key)
        return list(self._redis.mget(_block_key(provider, kid), _line_key(provider, kid),
                                     *others))

    def admit(self, provider: str, api_key: str, ctx: CallContext | None = None, *,
              read: tuple[Any, Any] | None = None) -> None:
        """Take a permit for one call through `api_key`, or raise Denied. `read`: the
        key's block and line, when the caller has just read them (read_with)."""
        ctx = ctx or current()
        kid = key_id(api_key)
        name = DISPLAY.get(provider, provider)
        try:
            blocked, line = read if read is not None else self._redis.mget(
                _block_key(provider, kid), _line_key(provider, kid))
            now = time.time()
            if blocked is not None and float(blocked) > now:
                raise Denied(float(blocked) - now + _jitter(0.5),
                             f"{name} asked us to wait: no call on this key until "
                             f"{_clock(float(blocked))}")
            budget = self._budgets.get(provider)
            if budget is None:
                return
            waiting = line is not None and float(line) > now
            if ctx.priority is Priority.BACKGROUND:
                self._admit_background(provider, kid, budget, waiting, now)
            else:
                self._admit_create(provider, kid, budget, waiting and not ctx.waited,
                                   ctx.waited, now)
        except RedisError as exc:
            self.unreachable(exc)

    def _admit_create(self, provider: str, kid: str, budget: Budget, behind: bool,
                      waited: bool, now: float) -> None:
        name = DISPLAY.get(provider, provider)
        if not behind:
            free_in = self._take(budget.limits, (provider, kid))
            if free_in is None:
                return
            if waited:  # its turn came: keep its place, wait only for the next permit
                raise Denied(free_in + _jitter(budget.spacing),
                             f"waiting for a {name} permit (key limit {budget.describe()})")
        else:
            free_in = 0.0
        slot = float(self._line([_line_key(provider, kid)],
                                [now + free_in, budget.spacing, _LINE_TTL]))
        wait = slot - now
        raise Denied(wait + _jitter(budget.spacing),
                     f"in line for a {name} permit (key limit {budget.describe()}): "
                     f"turn in {wait:.1f} s")

    def _admit_background(self, provider: str, kid: str, budget: Budget, waiting: bool,
                          now: float) -> None:
        name = DISPLAY.get(provider, provider)
        if not budget.background:
            raise Denied(_BACKGROUND_YIELD, f"no background share on this {name} key")
        shares = [(item, provider + "-bg") for item in budget.background]
        if waiting:  # creates in line: only half the share (see Budget.background_busy)
            shares += [(item, provider + "-bgw") for item in budget.background_busy]
        for item, space in shares:
            if not self._limiter.test(item, space, kid):
                reset = self._limiter.get_window_stats(item, space, kid).reset_time
                why = ("yielding to creates waiting on this " + name + " key" if waiting
                       else f"background share of the {name} key spent")
                raise Denied(max(_BACKGROUND_YIELD, reset - now) + _jitter(1.0), why)
        free_in = self._take(budget.limits, (provider, kid))
        if free_in is not None:
            raise Denied(free_in + _jitter(1.0), f"no {name} permit for background calls")
        for item, space in shares:
            self._limiter.hit(item, space, kid)

    def _take(self, items: tuple[RateLimitItem, ...], ids: tuple[str, ...]) -> float | None:
        """Hit every window, shortest first; None when all gave a permit, else seconds
        until the window that refused frees one (a shorter window's permit is then
        wasted, never a longer one's)."""
        for item in items:
            if not self._limiter.hit(item, *ids):
                reset = self._limiter.get_window_stats(item, *ids).reset_time
                return max(0.0, reset - time.time())
        return None

    # -- what the provider says ------------------------------------------------------------
    def observe(self, provider: str, api_key: str, status: int,
                headers: Mapping[str, str]) -> None:
        """Block the key fleet-wide when the provider says it is spent: a 429's wait, or
        LATE's X-RateLimit-Remaining 0 until X-RateLimit-Reset."""
        wait: float | None = None
        if status == 429:
            wait = retry_after_seconds(headers)
            if wait is None:
                wait = 1.0
        elif header(headers, "X-RateLimit-Remaining") == "0":
            wait = retry_after_seconds({"X-RateLimit-Reset":
                                        header(headers, "X-RateLimit-Reset") or ""})
        if not wait:
            return
        until = time.time() + min(wait, 86_400.0)
        try:
            self._redis.set(_block_key(provider, key_id(api_key)), repr(until),
                            px=max(1, int(wait * 1000) + 1000))
        except RedisError as exc:
            self.unreachable(exc)

    def blocked_until(self, provider: str, api_key: str) -> float | None:
        """When the provider's own wait on `api_key` ends (None: not blocked)."""
        value = self._redis.get(_block_key(provider, key_id(api_key)))
        return float(value) if value is not None and float(value) > time.time() else None

    def unreachable(self, exc: Exception) -> None:
        """Redis could not be reached: calls go out unpaced (logged every 30 s)."""
        now = time.monotonic()
        if now - self._warned > 30:
            self._warned = now
            log.warning("pacing: Redis unreachable (%s); calls go out unpaced",
                        type(exc).__name__)


def _block_key(provider: str, kid: str) -> str:
    return f"{PREFIX}:block:{provider}:{kid}"


def _line_key(provider: str, kid: str) -> str:
    return f"{PREFIX}:line:{provider}:{kid}"


def _jitter(spread: float) -> float:
    return random.uniform(0.0, max(0.0, min(spread, 1.0)))


def _clock(when: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(when)) + "Z"


_pacers: dict[tuple[str, ...], Pacer] = {}
_pacers_lock = threading.Lock()


_last: tuple[Any, Pacer] | None = None  # (settings, its pacer): asked for on every call


def pacer() -> Pacer:
    """The process's pacer for the current settings (built once per distinct setting)."""
    global _last
    s = settings.current()
    last = _last
    if last is not None and last[0] is s:
        return last[1]
    key = (s.broker_url, s.postforme_rate_limits, s.late_rate_limits,
           repr(s.background_share))
    with _pacers_lock:
        found = _pacers.get(key)
        if found is None:
            found = Pacer(s.broker_url, {
                "postforme": Budget.of(s.postforme_rate_limits, s.background_share),
                "late": Budget.of(s.late_rate_limits, s.background_share),
            })
            _pacers[key] = found
        _last = (s, found)
        return found
