"""A per-process cache that stays flat: bounded in entries, each entry expiring.

Why: a worker serves every user's keys. A plain dict keyed by key (one provider client,
one account list per credential) grows with the number of users a process has ever seen,
and keeps each decrypted key in memory for the life of the process. This one keeps at most
SOCIALPOST_CLIENT_CACHE_SIZE entries (the least recently used go first) and drops each at
its own expiry, so memory after 100,000 posts is memory after 10,000.

cachetools' TLRUCache does the bounding and the expiry; this adds the lock (a worker of
the threads pool shares it) and follows the size setting when it changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _expiry(_key: object, value: tuple[float, object], _now: float) -> float:
    return value[0]


def cache_size() -> int:
    """Entries one process keeps per cache (SOCIALPOST_CLIENT_CACHE_SIZE)."""
    return int(settings.current().client_cache_size)


class BoundedCache(Generic[K, V]):
    """A thread-safe map of at most `size()` entries, least recently used dropped first,
    each entry gone after the seconds given when it was put."""

    def __init__(self, size: Callable[[], int] = cache_size,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._timer = timer
        self._lock = threading.Lock()
        # Made on first use: importing a module that holds a cache reads no setting.
        self._data: TLRUCache[K, tuple[float, V]] = TLRUCache(1, _expiry, timer)

    def _fit(self) -> TLRUCache[K, tuple[float, V]]:
        """The cache, rebuilt (most recent entries kept) when the size setting changed."""
        size = self._size()
        if size != self._data.maxsize:
            fresh: TLRUCache[K, tuple[float, V]] = TLRUCache(size, _expiry, self._timer)
            for key in list(self._data.keys())[-size:]:
                fresh[key] = self._data[key]
            self._data = fresh
        return self._data

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._data.get(key)
        return None if found is None else found[1]

    def put(self, key: K, value: V, seconds: float) -> None:
        with self._lock:
            self._fit()[key] = (self._timer() + seconds, value)

    def get_or_put(self, key: K, make: Callable[[], V], seconds: float) -> V:
        """The entry under `key`, or `make()` put there for `seconds` (under the lock:
        two threads asking at once get the same value)."""
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                return found[1]
            value = make()
            self._fit()[key] = (self._timer() + seconds, value)
            return value

    def pop(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            self._data.expire()
            return len(self._data)
