"""The Grafana dashboard in deploy/grafana uses only metrics we export: a renamed metric
must not leave a panel silently empty."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tasks import metrics as worker_metrics

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "socialpost.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _exported() -> set[str]:
    from api import metrics as api_metrics

    api = (ROOT / "api" / "metrics.py").read_text(encoding="utf-8")
    names = {"socialpost_" + n for n in re.findall(r'\{PREFIX\}_([a-z_]+)"', api)}
    names |= {f.name for f in api_metrics._ledger_families(
        {"posts": [], "targets": [], "waiting": []})}
    names |= {m._name for m in (worker_metrics.ATTEMPTS, worker_metrics.CREATE_SECONDS,
                                worker_metrics.LATENESS_SECONDS,
                                worker_metrics.RATE_LIMIT_WAITS)}
    return names


def _base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def test_every_panel_queries_metrics_we_export() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exported = _exported()
    assert {"socialpost_posts", "socialpost_queue_depth", "socialpost_attempts"} <= exported
    used = set()
    for panel in doc["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= {_base(n) for n in re.findall(r"socialpost_[a-z_]+", target["expr"])}
    assert used - exported == set()
    assert exported - used == set(), "a metric no panel shows"
