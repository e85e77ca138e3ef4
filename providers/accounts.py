"""Connected accounts: the per-process cache of account lists, and the accounts side of
a provider client (listing, invalidating, picking the user's account per platform by
providers.ownership).

A stream of posts through one credential must not fetch the list every time, so lists
are kept SOCIALPOST_ACCOUNTS_CACHE_SECONDS by (client class, base URL, key digest); the
digest keeps the key out of memory dumps of the cache.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cached_property

from providers import config
from providers.client import ApiClient, log
from providers.errors import ProviderCallError
from providers.memo import BoundedCache
from providers.models import AccountInfo
from providers.outcomes import PublishRequest
from providers.ownership import Resolution, Scope, resolve, usable

CacheKey = tuple[str, str, str]

# Bounded and expiring (providers.memo): one entry per credential a process has used.
_accounts_cache: BoundedCache[CacheKey, tuple[AccountInfo, ...]] = BoundedCache()


def cache_key(client_class: str, base_url: str, api_key: str) -> CacheKey:
    """The cache slot of one credential at one API."""
    return client_class, base_url, hashlib.sha256(api_key.encode()).hexdigest()


def clear_accounts_cache() -> None:
    """Forget every cached account list (tests, or after credentials change)."""
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
        if ttl > 0:
            hit = _accounts_cache.get(self._cache_key)
            if hit is not None:
                return list(hit), True
        fetched = self._fetch_accounts()
        if ttl > 0:
            _accounts_cache.put(self._cache_key, tuple(fetched), ttl)
        return fetched, False

    def invalidate_accounts(self) -> None:
        """Drop this credential's cached account list (a new account was connected, or
        the provider refused an account id)."""
        _accounts_cache.pop(self._cache_key)

    def get_accounts(self) -> list[AccountInfo]:
        """Seed API: the connected accounts, or [] when they cannot be read."""
        try:
            return self.accounts()
        except ProviderCallError as exc:
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(exc))
        except Exception as exc:  # the seed API never raises
            log.warning("%s: listing accounts failed: %s", self.name, self._clean(repr(exc)))
        return []

    def scope_for(
        self, user_id: str | None, source: str, shared: bool | None = None
    ) -> Scope:
        """Who may use which account of this credential (see providers.ownership)."""
        allowed = config.shared_accounts() if shared is None else shared
        return Scope(user_id=user_id, source=source, shared=allowed, provider=self.name)

    def usable_accounts(
        self, user_id: str | None, source: str, shared: bool | None = None
    ) -> list[tuple[AccountInfo, str]]:
        """The accounts this user may post to with this credential, each with its rank
        ("own" or "shared"). Raises ProviderCallError."""
        return usable(self.accounts(), self.scope_for(user_id, source, shared))

    def _resolve(self, platforms: Iterable[str], request: PublishRequest
                 ) -> tuple[Resolution, bool]:
        """The account for each requested platform (providers.ownership), and whether the
        list came from the cache. A miss in a cached list is checked once more against
        a fresh one (the account may have been connected since)."""
        wanted = list(platforms)
        scope = self.scope_for(request.user_id, request.credential_source,
                               request.shared_accounts)
        named = request.account_ids or {}
        accounts, cached = self._accounts_with_source()
        found = resolve(accounts, wanted, scope, named)
        if cached and found.unserved:
            self.invalidate_accounts()
            accounts, cached = self._accounts_with_source()
            found = resolve(accounts, wanted, scope, named)
        return found, cached
