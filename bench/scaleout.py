"""Benchmark: does a second `socialpost worker` process add throughput? (issue 15, item 3)

With the provider answering after 50 ms (the sandbox's latency), one worker at the
shipped defaults is bound by waiting, not by the CPU: a second worker process should then
nearly double the posts per second. In one run, on one broker, database and sandbox:
  * one worker:  N two-platform posts sent by name, timed until every post is final
                 (created at PostForMe and confirmed by beat's sweep, as in throughput.py);
  * two workers: the same with two worker processes consuming the same queues.
Prints both rates and two / one beside its target (>= 1.6x). On a 2-core machine the two
workers share the cores with PostgreSQL, Redis, beat and the sandbox: the ratio is a
floor for machines where each worker has cores of its own. The CPU ceiling printed last
(cores / CPU a post in every program) is the most two / one could reach here.

Usage: .venv/bin/python bench/scaleout.py [--posts 1000] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Env, bench_env, bench_user  # noqa: E402
from bench.throughput import cpu_by_program, cpu_per_item, run_e2e  # noqa: E402

TARGET = 1.6  # two workers / one


def measure(env: Env, workers: int, n: int, user: str,
            others: dict[str, int]) -> tuple[float, float, float]:
    """(created/s, final/s, CPU seconds a post in every program) with `workers` worker
    processes at the shipped defaults; `others` are the run's other processes by label."""
    from worker.celery_app import app

    procs = [env.stack.worker(concurrency=None, pool=None, loglevel="warning",
                              name=f"scale{workers}-{i}") for i in range(workers)]
    pids = {**others, **{f"worker{i}": p.popen.pid for i, p in enumerate(procs)}}
    try:
        run_e2e(env, app, 50, user)  # warm up: connections, account cache, imports
        before = cpu_by_program(pids)
        created, final, _ = run_e2e(env, app, n, user)
        cpu = cpu_per_item(before, cpu_by_program(pids), n)
    finally:
        for proc in procs:
            env.stack.kill(proc, 15)
            proc.popen.wait(30)
            env.stack.procs.remove(proc)
    return created, final, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0,
                        help="the sandbox's delay before every PostForMe answer")
    args = parser.parse_args()

    with bench_env({"SOCIALPOST_RESULTS_DELAY": "1"}) as env:
        user, _, _ = bench_user(env)
        env.sandbox.set_faults("postforme", latency_ms=args.latency_ms)
        beat = env.stack.beat()  # its sweep confirms the posts
        others = {"beat": beat.popen.pid, "bench+sandbox": os.getpid()}
        if env.redis_pid:
            others["redis"] = env.redis_pid
        one = measure(env, 1, args.posts, user, others)
        two = measure(env, 2, args.posts, user, others)
    print(f"posts={args.posts} per phase; PostForMe answers after {args.latency_ms:.0f} ms; "
          "workers at the shipped pool and concurrency")
    print(f"{'one worker':<14}{one[1]:>8.0f} posts/s final   ({one[0]:.0f}/s created)")
    print(f"{'two workers':<14}{two[1]:>8.0f} posts/s final   ({two[0]:.0f}/s created)")
    ratio = two[1] / one[1]
    print(f"two / one = {ratio:.2f}x (target >= {TARGET}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'});  created: {two[0] / one[0]:.2f}x")
    # Every program's CPU a post (PostgreSQL, Redis, beat, the sandbox and the workers)
    # over the cores bounds any number of workers on this machine.
    cores = psutil.cpu_count() or 1
    most = cores / two[2]
    print(f"CPU a post in all programs: {one[2] * 1000:.2f} ms (one), {two[2] * 1000:.2f} ms "
          f"(two); ceiling on {cores} cores: {most:.0f}/s = {most / one[1]:.2f}x one worker")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
