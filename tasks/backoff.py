"""Bounded exponential backoff with "equal" jitter (half fixed, half random): retries spread
out instead of stampeding, yet never come back sooner than half the nominal wait."""

from __future__ import annotations

import random


def backoff_seconds(
    attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Delay before retry number `attempt` (1 = first retry): uniform in
    [exp/2, exp] where exp = min(cap, base * 2**(attempt-1)). Never above `cap`."""
    attempt = max(1, attempt)
    # Exponent clamped: 2**1024 does not fit a float, and 2**1000 already exceeds any cap.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 1000))
    r = rng or random
    return ceiling / 2 + r.random() * ceiling / 2
