"""Connected accounts: the per-process cache of account lists, and the accounts side of
a provider client (listing, invalidating, picking one account per platform).

A stream of posts through one credential must not fetch the list every time, so lists
are kept SOCIALPOST_ACCOUNTS_CACHE_SECONDS by (client class, base URL, key digest); the
digest keeps the key out of memory dumps of the cache.
"""

from __future__ import annotations

import hashlib
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cached_property

from providers import config
from providers.client import ApiClient, log
from providers.errors import ProviderCallError
from providers.models import AccountInfo
from providers.platforms import normalize_platform

CacheKey = tuple[str, str, str]

_accounts_cache: dict[CacheKey, tuple[float, tuple[AccountInfo, ...]]] = {}
_accounts_lock = threading.Lock()


def cache_key(client_class: str, base_url: str, api_key: str) -> CacheKey:
    """The cache slot of one credential at one API."""
    return client_class, base_url, hashlib.sha256(api_key.encode()).hexdigest()


def clear_accounts_cache() -> None:
    """Forget every cached account list (tests, or after credentials change)."""
    with _accounts_lock:
        _accounts_cache.clear()


class CachedAccounts(ApiClient, ABC):
    """What a provider client does with connected accounts; the provider supplies one
    uncached `_fetch_accounts` call."""

    @abstractmethod
    def _fetch_accounts(self) -> list[AccountInfo]:
        """One uncached account-list call; raises ProviderCallError."""

    @cached_property
    def _cache_key(self) -> CacheKey:
        return cache_key(type(self).__name__, self.base_url, self._key.reveal())

    def accounts(self) -> list[AccountInfo]:
        """Connected accounts, cached for SOCIALPOST_ACCOUNTS_CACHE_SECONDS per
        (base URL, key). Raises ProviderCallError."""
        return self._accounts_with_source()[0]

    def _accounts_with_source(self) -> tuple[list[AccountInfo], bool]:
        ttl = config.accounts_cache_seconds()
        now = time.monotonic()
        if ttl > 0:
            with _accounts_lock:
                hit = _accounts_cache.get(self._cache_key)
            if hit is not None and hit[0] > now:
                return list(hit[1]), True
        fetched = self._fetch_accounts()
        if ttl > 0:
            with _accounts_lock:
                _accounts_cache[self._cache_key] = (now + ttl, tuple(fetched))
        return fetched, False

    def invalidate_accounts(self) -> None:
        """Drop this credential's cached account list (a new account was connected, or
        the provider refused an account id)."""
        with _accounts_lock:
            _accounts_cache.pop(self._cache_key, None)

    def get_accounts(self) -> list[AccountInfo]:
        """Seed API: the connected accounts, or [] when they cannot be read."""
        try:
            return self.accounts()
        except ProviderCallError as exc:
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(exc))
        except Exception as exc:  # the seed API never raises
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(repr(exc)))
        return []

    def _resolve(self, platforms: Iterable[str]) -> tuple[dict[str, AccountInfo], list[str], bool]:
        """One account per requested platform (the first connected one), the platforms
        without any, and whether the list came from the cache. A miss in a cached list
        is checked once more against a fresh one."""
        wanted = list(platforms)
        accounts, cached = self._accounts_with_source()
        chosen = _pick(accounts, wanted)
        if cached and len(chosen) < len(wanted):
            self.invalidate_accounts()
            accounts, cached = self._accounts_with_source()
            chosen = _pick(accounts, wanted)
        missing = [p for p in wanted if p not in chosen]
        return chosen, missing, cached


def _pick(accounts: Iterable[AccountInfo], wanted: list[str]) -> dict[str, AccountInfo]:
    chosen: dict[str, AccountInfo] = {}
    for account in accounts:
        platform = normalize_platform(account.platform)
        if platform in wanted and platform not in chosen:
            chosen[platform] = account
    return {p: chosen[p] for p in wanted if p in chosen}
