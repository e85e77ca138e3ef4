"""What workers count for Prometheus (prometheus_client): each provider call by provider,
outcome kind and credential source; create latency per provider; how late scheduled
posts leave; rate-limit waits per provider.

Counted where an attempt is recorded (tasks.delivery), from the attempt rows the ledger
keeps, so the counters tell the same story as `post_attempts`. Labels are closed sets
(provider, outcome kind, credential source): never a key, a user or a post's content.
Every metric has labels, so none is instantiated before a worker's exporter has set up
multiprocess mode (worker/metrics_export.py): the pool's processes each write their own
file, which the worker's exporter sums.

The gauges read from the ledger and Redis (posts by status, queue depth, circuits) are
the API's, computed when /metrics is scraped (api/metrics.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

log = logging.getLogger("socialpost.metrics")

ATTEMPTS = Counter(
    "socialpost_attempts", "Provider calls recorded, by provider, outcome kind and "
    "credential source (the rows of post_attempts a worker writes)",
    ["provider", "outcome", "credential_source"])
CREATE_SECONDS = Histogram(
    "socialpost_create_seconds", "How long a provider took to answer a create",
    ["provider"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120))
LATENESS_SECONDS = Histogram(
    "socialpost_scheduled_lateness_seconds", "Scheduled posts: first send time minus the "
    "time they were due", ["provider"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600))
RATE_LIMIT_WAITS = Counter(
    "socialpost_rate_limit_waits", "Calls held back or refused for rate: `paced` (our "
    "budget of the key had no permit), `rate_limited` (the provider's 429), `held` (an "
    "account at its cap)", ["provider", "reason"])

WAITS = ("paced", "rate_limited", "held")
NOT_SENT = (*WAITS, "skipped")  # no request reached the provider


def attempted(rows: Iterable[object], *, reconciling: bool, first_send: bool,
              scheduled_for: datetime | None) -> None:
    """Count one recorded attempt's rows (ledger.AttemptRow: the call and any steps
    skipped for an open circuit). `first_send`: the post's first call on its first step,
    which times a scheduled post's lateness. Never raises: metrics must not fail a task."""
    try:
        for row in rows:
            provider = getattr(row, "provider", None) or "none"
            outcome = getattr(row, "outcome", None) or "none"
            ATTEMPTS.labels(provider, outcome,
                            getattr(row, "credential_source", None) or "none").inc()
            if outcome in WAITS:
                RATE_LIMIT_WAITS.labels(provider, outcome).inc()
            if outcome in NOT_SENT:
                continue
            if not reconciling:
                CREATE_SECONDS.labels(provider).observe(
                    max(0, getattr(row, "latency_ms", 0) or 0) / 1000.0)
            if first_send and scheduled_for is not None:
                late = (datetime.now(UTC) - scheduled_for).total_seconds()
                LATENESS_SECONDS.labels(provider).observe(max(0.0, late))
    except Exception as exc:  # a full disk under the multiprocess dir, say
        log.warning("metrics not counted: %s", exc)
