"""`GET /metrics` in Prometheus text (prometheus_client): the state of the whole service,
read when scraped, so any API process answers the same and nothing is counted twice.

- from the ledger (db/metrics.py): posts by status and provider, targets by status and
  provider (`accepted` waits for a platform, `unconfirmed` is the unknown), unconfirmed
  targets, non-final posts by status and age band, and the oldest of each;
- from Redis: each queue's depth, each provider's circuit (open or not);
- `socialpost_scrape_ok{source}` says whether PostgreSQL and Redis answered (a store
  that is down does not fail the scrape; its gauges are missing).

The workers' own counters (calls by outcome, create latency, lateness, rate-limit waits)
are served by each worker (SOCIALPOST_WORKER_METRICS_PORT, worker/metrics_export.py).
No token is needed unless SOCIALPOST_METRICS_TOKEN is set.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

import settings
from api.problems import Problem, responses

log = logging.getLogger("socialpost.api.metrics")
router = APIRouter(tags=["metrics"])
PREFIX = "socialpost"


def _queues() -> list[str]:
    import celeryconfig
    from tasks.base import DEAD_LETTER_QUEUE

    return [q.name for q in celeryconfig.task_queues] + [DEAD_LETTER_QUEUE]


class ServiceCollector(Collector):
    """Reads the ledger and Redis at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ok = GaugeMetricFamily(f"{PREFIX}_scrape_ok", "Whether a store answered this scrape "
                               "(1) or not (0)", labels=["source"])
        ledger = _ledger()
        ok.add_metric(["postgres"], 1 if ledger is not None else 0)
        if ledger is not None:
            yield from _ledger_families(ledger)
        redis_families = _redis_families()
        ok.add_metric(["redis"], 1 if redis_families is not None else 0)
        yield from redis_families or []
        yield ok


def _ledger() -> dict[str, list[dict[str, Any]]] | None:
    from db import metrics
    from db.pool import connection

    try:
        with connection() as conn:
            return metrics.read(conn)
    except Exception as exc:  # down, or slower than the scrape's statement timeout
        log.warning("metrics: PostgreSQL: %s", type(exc).__name__)
        return None


def _ledger_families(data: dict[str, list[dict[str, Any]]]) -> Iterator[GaugeMetricFamily]:
    from db.metrics import AGE_BANDS

    for name, what in (("posts", "Posts by status and the provider of their first "
                                  "published target (none: not published)"),
                       ("targets", "Platform targets by status and the provider that "
                                   "holds them (none: not sent yet)")):
        family = GaugeMetricFamily(f"{PREFIX}_{name}", what, labels=["status", "provider"])
        for r in data[name]:
            family.add_metric([r["status"], r["provider"]], r["n"])
        yield family
    yield GaugeMetricFamily(f"{PREFIX}_targets_unconfirmed", "Targets whose outcome is "
                            "unknown (check the platform before posting again)",
                            value=sum(r["n"] for r in data["targets"]
                                      if r["status"] == "unconfirmed"))
    waiting = GaugeMetricFamily(f"{PREFIX}_posts_waiting", "Posts not final yet, by status "
                                "and how long they have waited (scheduled: since due; "
                                "others: since queued)", labels=["status", "age"])
    oldest = GaugeMetricFamily(f"{PREFIX}_posts_waiting_oldest_seconds", "The longest wait "
                               "of a post not final yet, by status", labels=["status"])
    seen = {(r["status"], r["band"]): r for r in data["waiting"]}
    from db.metrics import NON_FINAL

    for status in NON_FINAL:
        worst = 0.0
        for band, _ in AGE_BANDS:
            row = seen.get((status, band))
            waiting.add_metric([status, band], row["n"] if row else 0)
            worst = max(worst, float(row["oldest"])) if row else worst
        oldest.add_metric([status], worst)
    yield waiting
    yield oldest
    deliveries = GaugeMetricFamily(f"{PREFIX}_webhook_deliveries", "Outcome-event webhook "
                                   "deliveries by state (pending: still being tried)",
                                   labels=["status"])
    found = {r["status"]: r["n"] for r in data.get("webhook_deliveries", [])}
    for status in ("pending", "delivered", "failed"):
        deliveries.add_metric([status], found.get(status, 0))
    yield deliveries
    attempts = GaugeMetricFamily(f"{PREFIX}_webhook_attempts", "Webhook delivery attempts "
                                 "by result (ok: a 2xx answer)", labels=["result"])
    tried = {r["result"]: r["n"] for r in data.get("webhook_attempts", [])}
    for result in ("ok", "failed"):
        attempts.add_metric([result], tried.get(result, 0))
    yield attempts


def _redis_families() -> list[GaugeMetricFamily] | None:
    from api.health import _redis
    from providers import circuit

    config = settings.current()
    try:
        client = _redis(config.broker_url)
        pipe = client.pipeline(transaction=False)
        queues = _queues()
        for name in queues:
            pipe.llen(name)
        depths = pipe.execute()
        # as the engine sees it: past its cool-down, with no probe out, a circuit lets calls go
        circuits = {"postforme": circuit.is_open(config.postforme_base_url),
                    "late": circuit.is_open(config.late_base_url)}
    except Exception as exc:
        log.warning("metrics: Redis: %s", type(exc).__name__)
        return None
    depth = GaugeMetricFamily(f"{PREFIX}_queue_depth", "Messages waiting in each broker "
                              "queue", labels=["queue"])
    for name, n in zip(queues, depths, strict=True):
        depth.add_metric([name], int(n))
    state = GaugeMetricFamily(f"{PREFIX}_circuit_open", "Whether each provider's circuit "
                              "is open (1: calls skip it or wait)", labels=["provider"])
    for provider, found in circuits.items():
        state.add_metric([provider], 1 if found is not None else 0)
    return [depth, state]


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ServiceCollector())


@router.get("/metrics", summary="Prometheus metrics (text exposition format)",
            response_class=Response, responses={
                200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                      "description": "The metrics"},
                **responses(401)})
async def metrics(
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """The service's gauges from the ledger and Redis; no token unless
    SOCIALPOST_METRICS_TOKEN is set (then `Authorization: Bearer <it>`)."""
    wanted = settings.current().metrics_token
    if wanted:
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 wanted.encode()):
            raise Problem(401, "unauthenticated", "send Authorization: Bearer "
                          "<SOCIALPOST_METRICS_TOKEN>",
                          headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
