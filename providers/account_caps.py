"""Posts per social account: the platforms' daily and hourly caps, counted fleet-wide.

Why: LATE documents caps per social account (X 50 a day, Instagram 100, Facebook 100,
Threads 250, Pinterest 25, others 50; every one 25 an hour) and a post over them is
refused or silently rescheduled by the platform. A post that would exceed its account's
cap is held here instead (the engine puts it back to `scheduled` until it fits), never
sent to be refused. Counted per (provider, account id) in the pacer's Redis, with the
same `limits` moving windows; SOCIALPOST_ACCOUNT_CAPS sets them (`none`: off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem
from redis.exceptions import RedisError

import settings
from providers.limits_syntax import ANY_PLATFORM, parse_caps
from providers.models import AccountInfo
from providers.pacing import DISPLAY, Pacer, pacer


@dataclass(frozen=True)
class Held:
    """The post must wait `wait` seconds for an account's cap; `reason` says which."""

    wait: float
    reason: str


class AccountCaps:
    """The caps per platform, checked and taken for the accounts one create posts to."""

    def __init__(self, pacer_: Pacer, caps: Mapping[str, tuple[RateLimitItem, ...]]) -> None:
        self._pacer = pacer_
        self._caps = dict(caps)

    def caps_for(self, platform: str) -> tuple[RateLimitItem, ...]:
        return self._caps.get(platform) or self._caps.get(ANY_PLATFORM) or ()

    @property
    def active(self) -> bool:
        return bool(self._caps)

    def check(self, provider: str, chosen: Mapping[str, AccountInfo]) -> Held | None:
        """Whether the post would fit every chosen account's caps (nothing counted)."""
        if not self._caps:
            return None
        try:
            for platform, account in chosen.items():
                for item in self.caps_for(platform):
                    if not self._pacer.limiter.test(item, "acct", provider, account.id):
                        return self._held(provider, platform, account, item)
        except RedisError:
            return None
        return None

    def take(self, provider: str, chosen: Mapping[str, AccountInfo]) -> Held | None:
        """Count one post on every chosen account, or say how long the post is held.
        Every cap is tested first, so a post held for one account costs the others
        nothing."""
        if not self._caps:
            return None
        limiter = self._pacer.limiter
        try:
            for platform, account in chosen.items():
                for item in self.caps_for(platform):
                    if not limiter.test(item, "acct", provider, account.id):
                        return self._held(provider, platform, account, item)
            for platform, account in chosen.items():
                for item in self.caps_for(platform):
                    if not limiter.hit(item, "acct", provider, account.id):
                        return self._held(provider, platform, account, item)
        except RedisError:
            return None  # unpaced, as the pacer is without Redis: the platform still caps
        return None

    def _held(self, provider: str, platform: str, account: AccountInfo,
              item: RateLimitItem) -> Held:
        stats = self._pacer.limiter.get_window_stats(item, "acct", provider, account.id)
        wait = max(1.0, stats.reset_time - time.time())
        until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(time.time() + wait))
        per = f"{item.multiples} " if item.multiples > 1 else ""
        return Held(wait, f"held: {platform} account {account.username or account.id} "
                          f"({DISPLAY.get(provider, provider)}) is at its cap of "
                          f"{item.amount} posts per {per}{item.GRANULARITY.name}; it fits "
                          f"again at {until}")


_caps: dict[tuple[str, ...], AccountCaps] = {}
_lock = threading.Lock()


def account_caps() -> AccountCaps:
    """The process's caps for the current settings."""
    s = settings.current()
    key = (s.broker_url, s.account_caps, s.postforme_rate_limits, s.late_rate_limits,
           repr(s.background_share))
    with _lock:
        found = _caps.get(key)
        if found is None:
            found = AccountCaps(pacer(), parse_caps(s.account_caps))
            _caps[key] = found
        return found
