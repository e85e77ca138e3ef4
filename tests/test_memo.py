"""Per-process caches stay flat: bounded in entries, each entry expiring (providers.memo)."""

from __future__ import annotations

import threading
import time

from providers.memo import BoundedCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bounded_least_recently_used_first_and_expiring() -> None:
    clock = Clock()
    cache: BoundedCache[str, int] = BoundedCache(size=lambda: 3, timer=clock)
    for i in range(10):
        cache.put(f"k{i}", i, seconds=60)
    assert len(cache) == 3
    assert [cache.get(f"k{i}") for i in range(6, 10)] == [None, 7, 8, 9]
    assert cache.get("k7") == 7  # used: k8 is now the least recently used
    cache.put("new", 1, seconds=5)
    assert (cache.get("k8"), cache.get("k7"), cache.get("new")) == (None, 7, 1)
    clock.now += 6
    assert cache.get("new") is None and cache.get("k7") == 7 and len(cache) == 2
    clock.now += 60
    assert len(cache) == 0


def test_follows_the_size_setting_and_makes_one_value_per_key() -> None:
    size = [100]
    cache: BoundedCache[object, object] = BoundedCache(size=lambda: size[0])
    for i in range(100):
        cache.put(i, i, seconds=60)
    size[0] = 10
    cache.put(100, 100, seconds=60)
    assert len(cache) == 10 and cache.get(100) == 100 and cache.get(0) is None

    made: list[object] = []

    def make() -> object:
        time.sleep(0.05)  # long enough for the other threads to ask meanwhile
        made.append(object())
        return made[-1]

    got: list[object] = []
    together = threading.Barrier(8)

    def ask() -> None:
        together.wait()  # all eight ask at once
        got.append(cache.get_or_put("x", make, 60))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(g is made[0] for g in got)
