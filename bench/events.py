"""Benchmark: what outcome events cost, and how soon a receiver hears of an outcome.

In one run, one broker, one worker pool, one sandbox (LATE: a post is final in its
create call, so the run times our pipeline, not a confirmation sweep):
  * off: N posts with the outbox triggers disabled (no events at all), timed until every
         post is final;
  * on:  N posts with the triggers on and one webhook endpoint (a real HTTP receiver, in
         a process of its own), timed the same way; then until it holds every event.
  * outbox only: the triggers on, the endpoint disabled (events written and dispatched,
         none delivered): the cost of the outbox itself.
Prints the rates and the cost of events (target <= 10 %), and the delivery lag of every
event: from its row in the outbox (the state change) to its arrival at the receiver.
Every post is sent at once at the start of its phase, so the lag is measured under a
full queue (the worst case), not at a steady rate. `--rounds` repeats the phases
interleaved (the machine's other load then falls on each); medians are shown.

Usage: .venv/bin/python bench/events.py [--posts 2000] [--concurrency 4] [--rounds 1]
       [--events post.posted,post.failed]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    Env,
    bench_env,
    count_final,
    percentile,
    proc_stats,
    until_final,
)

ROOT = Path(__file__).resolve().parent.parent


class RemoteReceiver:
    """tests/receiver.py in a process of its own; what it took, read from its output."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.receiver"], cwd=ROOT,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.first: dict[str, float] = {}  # webhook-id -> first arrival
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event_id, at = line.split()
            with self._lock:
                self.first.setdefault(event_id, float(at))

    def arrivals(self) -> dict[str, float]:
        with self._lock:
            return dict(self.first)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()

PLATFORMS = ["twitter", "bluesky"]
TRIGGERS = (("social_posts", "social_posts_events"), ("post_targets", "post_targets_events"))


def set_triggers(dsn: str, on: bool) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for table, trigger in TRIGGERS:
            conn.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER {trigger}")


def set_endpoints(dsn: str, on: bool) -> None:
    """Endpoints off: events are written and dispatched, but nothing is delivered."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE webhook_endpoints SET disabled_at = CASE WHEN %s THEN NULL"
                     " ELSE now() END", (on,))


def stack_cpu(env: Env) -> float:
    """CPU seconds used so far by the stack's processes (worker and beat, children
    included; each runs in a process group of its own): ours alone, whatever else the
    machine runs. PostgreSQL and Redis are shared with others and not counted."""
    import os

    groups = {p.popen.pid for p in env.stack.procs}
    tick = os.sysconf("SC_CLK_TCK")
    return sum(sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
               for _, _, fields in proc_stats() if int(fields[2]) in groups)  # pgrp


def run_posts(env: Env, n: int, user: str, label: str) -> tuple[float, list[str]]:
    """Send n posts by task name; (posts per second until all are final, their ids)."""
    from worker.celery_app import app

    done_before = _done(env)
    ids = [str(uuid.uuid4()) for _ in range(n)]
    start = time.perf_counter()
    for i, pid in enumerate(ids):
        app.send_task("social.publish_post", kwargs={
            "user_id": user, "content": f"{label} {i} {pid[:8]}", "platforms": PLATFORMS,
            "post_id": pid})
    until_final(env.dsn, done_before + n, 900)
    return n / (time.perf_counter() - start), ids


def _done(env: Env) -> int:
    counts = count_final(env.dsn)
    return sum(v for k, v in counts.items() if k not in ("queued", "publishing", "scheduled"))


def lag(env: Env, receiver: RemoteReceiver, ids: list[str],
        timeout: float) -> tuple[int, list[float]]:
    """Wait until the receiver holds every event of `ids` its endpoint takes; (events, lag
    of each in s)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(env.dsn) as conn:
        while conn.execute(  # every event fanned out: its deliveries exist
                "SELECT count(*) FROM post_events WHERE post_id = ANY(%s::uuid[])"
                " AND dispatched_at IS NULL", (ids,)).fetchone()[0]:  # type: ignore[index]
            if time.monotonic() > deadline:
                raise TimeoutError("events not dispatched")
            time.sleep(0.2)
        rows = conn.execute(
            "SELECT id::text, extract(epoch FROM created_at) FROM post_events"
            " WHERE post_id = ANY(%s::uuid[])", (ids,)).fetchall()
        wanted = {str(r[0]) for r in conn.execute(
            "SELECT d.event_id FROM webhook_deliveries d JOIN post_events e"
            " ON e.id = d.event_id WHERE e.post_id = ANY(%s::uuid[])", (ids,))}
    created = {r[0]: float(r[1]) for r in rows if r[0] in wanted}
    while True:
        got = receiver.arrivals()
        if set(created) <= set(got):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(set(created) & set(got))}/{len(created)} events arrived")
        time.sleep(0.2)
    first = receiver.arrivals()  # the first arrival of each id is its delivery
    return len(created), sorted(first[i] - created[i] for i in created)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the three phases, interleaved; medians are shown")
    parser.add_argument("--events-pool", default=None, metavar="POOL",
                        help="give webhook attempts (queue social.events) a worker of their "
                        "own with this pool, e.g. threads (default: the one worker serves all)")
    parser.add_argument("--events", default=None, metavar="TYPES",
                        help="the endpoint's event types (default: every post event, 3 a "
                        "post here; e.g. post.posted for one a post)")
    args = parser.parse_args()

    receiver = RemoteReceiver()
    with bench_env({"SOCIALPOST_ALLOW_PRIVATE_URLS": "1", "LATE_CDN_WAIT_SECONDS": "0"}) as env:
        from db import credentials, webhooks
        from db.pool import connect
        from db.vault import Vault
        from worker.celery_app import app

        app.conf.broker_url = env.redis_url
        app.conf.result_backend = env.redis_url
        key = "bench-late-" + uuid.uuid4().hex
        env.sandbox.register_key("late", key, PLATFORMS)
        user = str(uuid.uuid4())
        with connect(env.dsn) as conn:
            credentials.save_credentials(conn, Vault.from_env(), user, "late", key)
            webhooks.create_endpoint(
                conn, receiver.url,
                event_types=args.events.split(",") if args.events else None)
        if args.events_pool:
            env.stack.worker(concurrency=args.concurrency, loglevel="warning",
                             queues="celery,social.publish,social.maintenance")
            env.stack.worker(concurrency=8, loglevel="warning", queues="social.events",
                             pool=args.events_pool)
        else:
            env.stack.worker(concurrency=args.concurrency, loglevel="warning")
        env.stack.beat()
        run_posts(env, 50, user, "warm-up")  # connections, caches, imports

        n = args.posts
        rates: dict[str, list[float]] = {"off": [], "outbox": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "outbox": [], "on": []}  # ms a post
        # What the stack spends doing nothing (beat's passes, polling), per second: taken
        # off each phase's CPU, so a phase slowed by the machine's other load is not
        # charged for its longer idle time.
        i0, t0 = stack_cpu(env), time.monotonic()
        time.sleep(10)
        idle = (stack_cpu(env) - i0) / (time.monotonic() - t0)
        lags: list[float] = []
        events = 0
        for _ in range(args.rounds):  # phases interleaved: a neighbour's load hits each
            set_triggers(env.dsn, on=False)
            c0, t0 = stack_cpu(env), time.monotonic()
            rates["off"].append(run_posts(env, n, user, "events off")[0])
            time.sleep(2)  # beat's passes over the phase's last posts
            c1, t1 = stack_cpu(env), time.monotonic()
            set_triggers(env.dsn, on=True)
            set_endpoints(env.dsn, on=False)
            rates["outbox"].append(run_posts(env, n, user, "outbox only")[0])
            time.sleep(2)
            c2, t2 = stack_cpu(env), time.monotonic()
            set_endpoints(env.dsn, on=True)
            rate, ids = run_posts(env, n, user, "events on")
            rates["on"].append(rate)
            got, round_lags = lag(env, receiver, ids, timeout=900)
            c3, t3 = stack_cpu(env), time.monotonic()  # every delivery made
            for key, spent, took in (("off", c1 - c0, t1 - t0), ("outbox", c2 - c1, t2 - t1),
                                     ("on", c3 - c2, t3 - t2)):
                cpu[key].append((spent - idle * took) * 1000 / n)
            events += got
            lags += round_lags
        finals = count_final(env.dsn)
    receiver.stop()
    if set(finals) != {"posted"}:
        print(f"warning: not every post was posted ({finals}): the rates are not comparable")
    lags.sort()
    off, outbox, on = (statistics.median(rates[k]) for k in ("off", "outbox", "on"))
    print(f"posts={n} per phase x {args.rounds} round(s), {len(PLATFORMS)} platforms each; "
          f"worker -c {args.concurrency}"
          + (f" + social.events worker -P {args.events_pool} -c 8" if args.events_pool else "")
          + f"; endpoint events: {args.events or 'every post event'}")
    print(f"final statuses (all phases): {finals}")
    for label, key in (("events off", "off"), ("outbox, no endpoint", "outbox"),
                       ("events on, 1 endpoint", "on")):
        each = ", ".join(f"{r:.1f}" for r in rates[key])
        median = statistics.median(rates[key])
        print(f"{label:<24}{median:>8.1f} posts/s (median of {each})   cost "
              f"{(off - median) / off * 100:+.1f} %")
    print(f"stack idle: {idle * 1000:.0f} ms of CPU a second (taken off each phase)")
    base = statistics.median(cpu["off"])
    for label, key in (("events off", "off"), ("outbox, no endpoint", "outbox"),
                       ("events on, 1 endpoint", "on")):
        median = statistics.median(cpu[key])
        print(f"{label:<24}{median:>8.2f} ms of worker+beat CPU a post   cost "
              f"{(median - base) / base * 100:+.1f} %")
    print("target: events on costs <= 10 % (rates swing with the machine's other load; the "
          "CPU our own processes spent a post does not)")
    print(f"events delivered: {events} ({events / (n * args.rounds):.1f} per post), "
          f"lag p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s, "
          f"max {lags[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
