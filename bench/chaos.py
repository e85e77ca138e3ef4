"""Delivery guarantees under failure: nothing lost, nothing doubled.

Runs each fault scenario against the real stack (a scratch PostgreSQL database, a private
Redis, `celery worker` and `celery beat` processes, the provider sandbox), then checks in
the ledger and at the sandbox that every post is final, none was created twice at a
provider, and nothing is left queued or publishing. Prints one row per scenario.

Usage:
  .venv/bin/python bench/chaos.py --posts 2000             # every scenario
  .venv/bin/python bench/chaos.py --scenario flaky --posts 300
  .venv/bin/python bench/chaos.py --list
Exit status 1 when any scenario found a problem (they are listed under the table).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import scenarios, scenarios_once  # noqa: E402
from bench.chaoslib import PgCluster, Report  # noqa: E402
from providers.sandbox import SandboxServer  # noqa: E402


def _postgres(run: scenarios.Run) -> list[Report]:
    if PgCluster.bindir() is None:
        return [Report("3 postgres restart", 0, 0, 0, 0, 0.0,
                       ["skipped: no initdb/pg_ctl under /usr/lib/postgresql"])]
    return [scenarios.postgres_restart(run)]


def _pgoutage(run: scenarios.Run) -> list[Report]:
    if PgCluster.bindir() is None:
        return [Report("13 postgres down ~1 min", 0, 0, 0, 0, 0.0,
                       ["skipped: no initdb/pg_ctl under /usr/lib/postgresql"])]
    return [scenarios_once.pgoutage(run)]


def _bad_input(run: scenarios.Run) -> list[Report]:
    """500 malformed requests (or a quarter of --posts if more), a quarter good posts."""
    good = scenarios.Run(run.sandbox, max(50, run.posts // 4), run.seed, run.quick,
                         run.logs, run.timeout)
    return [scenarios.bad_input(good, bad=max(500, run.posts // 4))]


SCENARIOS: dict[str, Callable[[scenarios.Run], list[Report]]] = {
    "kills": lambda run: [scenarios.worker_kills(run)],
    "redis": lambda run: [scenarios.redis_loss(run)],
    "postgres": _postgres,
    "flaky": lambda run: [scenarios.flaky_primary(run)],
    "down": lambda run: list(scenarios.primary_down(run)),
    "release": lambda run: [scenarios.double_release(run)],
    "badinput": _bad_input,
    "secrets": lambda run: [scenarios.secrets(run)],
    # issue 10's exactly-once rules (bench/scenarios_once.py)
    "create5xx": lambda run: [scenarios_once.create5xx(run)],
    "ambiguous": lambda run: [scenarios_once.ambiguous(run)],
    "slowcreate": lambda run: [scenarios_once.slowcreate(run)],
    "tenants": lambda run: [scenarios_once.tenants(run)],
    "pgoutage": _pgoutage,
}


def table(reports: list[Report]) -> str:
    head = f"{'scenario':<24}{'sent':>7}{'final':>7}{'dup':>6}{'lost':>6}{'wall s':>9}  notes"
    lines = [head, "-" * len(head)]
    for r in reports:
        mark = "" if r.ok else "  << PROBLEMS"
        lines.append(f"{r.scenario:<24}{r.sent:>7}{r.final:>7}{r.duplicated:>6}{r.lost:>6}"
                     f"{r.wall:>9.1f}  {'; '.join(r.notes)}{mark}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000, help="posts per scenario")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS),
                        help="run only this one (repeatable); default: all")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true",
                        help="the CI versions' shorter fault phases (tests/test_faults.py)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds for one scenario's posts to become final")
    parser.add_argument("--keep-logs", type=Path, default=None,
                        help="keep every process log under this folder")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(sorted(SCENARIOS)))
        return 0

    sandbox = SandboxServer(host="127.0.0.1", port=0).start()
    run = scenarios.Run(sandbox, args.posts, seed=args.seed, quick=args.quick,
                        logs=args.keep_logs, timeout=args.timeout)
    reports: list[Report] = []
    try:
        for name in args.scenario or list(SCENARIOS):
            began = time.monotonic()
            print(f"-- {name} ...", flush=True)
            for report in SCENARIOS[name](run):
                reports.append(report)
                print(table([report]).splitlines()[-1], flush=True)
            print(f"   ({time.monotonic() - began:.0f} s with set-up)", flush=True)
    finally:
        sandbox.stop()
    print()
    print(table(reports))
    problems = [(r.scenario, p) for r in reports for p in r.problems]
    for scenario, problem in problems:
        print(f"PROBLEM {scenario}: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
