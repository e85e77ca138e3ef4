"""Benchmark: flow control at the providers' real limits and with a dead primary.

In one run, each part on a fresh stack (one worker, beat, the sandbox enforcing limits):
  (a) N posts on one PostForMe key at its real limits (5/second;40/minute, enforced by
      the sandbox too), a LATE key as the fallback: completion time against the ideal
      (posts / 40 a minute), 429 answers, posts that fell over;
  (b) PostForMe refusing connections, the user's LATE key behind it, against a run where
      only LATE is configured: the throughput ratio (target >= 0.9);
  (c) the same with PostForMe black-holed (every connect times out).

Usage: .venv/bin/python bench/flow.py [--paced-posts 300] [--posts 1500] [--only a|b|c]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Env, bench_env  # noqa: E402

REAL_PFM = "5/second;40/minute"
FINAL = ("posted", "partial", "failed", "unconfirmed", "cancelled")


def _user(env: Env, keys: dict[str, str]) -> str:
    from db import credentials
    from db.pool import connect
    from db.vault import Vault

    user = str(uuid.uuid4())
    with connect(env.dsn) as conn:
        for provider, key in keys.items():
            credentials.save_credentials(conn, Vault.from_env(), user, provider, key)
    return user


def _key(env: Env, provider: str) -> str:
    key = f"bench-{provider}-{uuid.uuid4().hex}"
    env.sandbox.register_key(provider, key, ["linkedin"])
    return key


def _send(env: Env, user: str, n: int, label: str) -> list[str]:
    from worker.celery_app import app

    app.conf.broker_url = env.redis_url
    ids = [str(uuid.uuid4()) for _ in range(n)]
    for i, post_id in enumerate(ids):
        app.send_task("social.publish_post", kwargs={
            "user_id": user, "content": f"{label} {i} {post_id[:8]}",
            "platforms": ["linkedin"], "post_id": post_id})
    return ids


def _wait(env: Env, ids: list[str], timeout: float, progress: bool = False) -> dict[str, int]:
    import psycopg

    deadline = time.monotonic() + timeout
    shown = -1
    while True:
        with psycopg.connect(env.dsn) as conn:
            rows = conn.execute("SELECT status, count(*) FROM social_posts WHERE id::text = "
                                "ANY(%s) GROUP BY status", (ids,)).fetchall()
        counts = {s: n for s, n in rows}
        done = sum(n for s, n in counts.items() if s in FINAL)
        if progress and done // 20 != shown:
            shown = done // 20
            print(f"  {done}/{len(ids)} final", flush=True)
        if done >= len(ids):
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done}/{len(ids)} final after {timeout:.0f} s: {counts}")
        time.sleep(0.2)


def _fell_over(env: Env, ids: list[str]) -> int:
    import psycopg

    with psycopg.connect(env.dsn) as conn:
        row = conn.execute("SELECT count(*) FROM post_targets WHERE post_id::text = ANY(%s) "
                           "AND provider = 'late'", (ids,)).fetchone()
    return int(row[0]) if row else 0


def paced(n: int) -> None:
    """(a): one key at the real limits."""
    settings = {"POSTFORME_RATE_LIMITS": REAL_PFM, "LATE_RATE_LIMITS": "1000/second"}
    with bench_env(settings, sandbox_options={"rate_limits": {"postforme": REAL_PFM}}) as env:
        pfm, late = _key(env, "postforme"), _key(env, "late")
        user = _user(env, {"postforme": pfm, "late": late})
        env.stack.worker(concurrency=4, loglevel="warning")
        env.stack.beat()
        start = time.monotonic()
        ids = _send(env, user, n, "paced")
        counts = _wait(env, ids, timeout=n * 3 + 300, progress=True)
        took = time.monotonic() - start
        arrivals = env.sandbox.arrivals("postforme", api_key=pfm)
        limited = sum(1 for a in arrivals if a.status == 429)
        ideal = n / 40 * 60  # posts / the minute limit
        print(f"(a) {n} posts on one PostForMe key at {REAL_PFM}: {took:.0f} s "
              f"(ideal {ideal:.0f} s: {took / ideal:.2f}x), "
              f"{limited} answers 429 (target <= 2), {_fell_over(env, ids)} fell over to "
              f"LATE; final {counts}")


def dead_primary(n: int, mode: str) -> float:
    """(b)/(c): LATE-only throughput, then PostForMe dead in front of LATE; the ratio."""
    rates: dict[str, float] = {}
    with bench_env({"SOCIALPOST_CONNECT_TIMEOUT": "5"},
                   sandbox_options={"separate_ports": True}) as env:
        env.stack.worker(concurrency=4, loglevel="warning")
        env.stack.beat()
        late_only = _user(env, {"late": _key(env, "late")})
        _wait(env, _send(env, late_only, 50, "warm-up"), 120)
        for run, keys in (("LATE only", {"late": _key(env, "late")}),
                          (f"PostForMe {mode}", {"postforme": _key(env, "postforme"),
                                                 "late": _key(env, "late")})):
            if keys.get("postforme"):
                env.sandbox.set_connection_mode("postforme", mode)
            user = _user(env, keys)
            start = time.monotonic()
            ids = _send(env, user, n, run)
            counts = _wait(env, ids, timeout=600)
            rates[run] = n / (time.monotonic() - start)
            print(f"    {run:<22} {rates[run]:7.1f} posts/s  {counts}")
        ratio = rates[f"PostForMe {mode}"] / rates["LATE only"]
        print(f"({'b' if mode == 'refuse' else 'c'}) PostForMe {mode}: {ratio:.2f}x the "
              f"LATE-only throughput (target >= 0.90)")
        return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paced-posts", type=int, default=300)
    parser.add_argument("--posts", type=int, default=1500)
    parser.add_argument("--only", choices=("a", "b", "c"))
    args = parser.parse_args()
    if args.only in (None, "b"):
        dead_primary(args.posts, "refuse")
    if args.only in (None, "c"):
        dead_primary(args.posts, "blackhole")
    if args.only in (None, "a"):
        paced(args.paced_posts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
