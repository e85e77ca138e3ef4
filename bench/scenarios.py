"""The fault scenarios, each a function from a `Run` to one `Report` row.

bench/chaos.py runs them at full size; tests/test_faults.py runs quick ones (`Run.quick`).
Every scenario builds its own world (bench.chaoslib.chaos_env), sends a workload by task
name, hurts the stack while it works, waits until every post is final and then audits the
ledger against the sandbox's own count of creates.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import badinput
from bench.chaoslib import (
    FINAL,
    Chaos,
    PgCluster,
    PostSpec,
    Report,
    User,
    WorkerSet,
    audit,
    broker_backlog,
    chaos_env,
    creates_by_target,
    database_dump,
    find_secrets,
    flower_tasks,
    make_posts,
    our_tracebacks,
    patched_environ,
    recognisable_key,
    recovered_in_logs,
    redeliver_stranded,
    redis_dump,
    released_in_logs,
    save_users,
    send_posts,
    statuses,
    wait_final,
)
from bench.harness import ADMIN_DSN, free_port
from db.vault import Vault
from providers.sandbox import SandboxServer
from tests.stack import wait_for


@dataclass
class Run:
    """What every scenario needs: the sandbox, the size, and where to keep logs."""

    sandbox: SandboxServer
    posts: int
    seed: int = 7
    quick: bool = False  # CI: shorter fault phases
    logs: Path | None = None  # keep each scenario's logs under here
    timeout: float = 600.0  # for the whole workload to become final
    admin_dsn: str = ADMIN_DSN  # the PostgreSQL server for scratch databases

    def world(self, name: str, settings: dict[str, str] | None = None,
              admin_dsn: str | None = None) -> AbstractContextManager[Chaos]:
        """The scenario's own database, Redis and stack; logs kept under `logs/name`."""
        workdir = None if self.logs is None else self.logs / name
        return chaos_env(self.sandbox, settings, admin_dsn=admin_dsn or self.admin_dsn,
                         workdir=workdir)

    def rng(self) -> random.Random:
        return random.Random(self.seed)


def _start(chaos: Chaos, workers: int, concurrency: int, beats: int = 1,
           loglevel: str = "info") -> WorkerSet:
    pool = WorkerSet(chaos.stack, workers, concurrency, loglevel).start()
    for i in range(beats):
        chaos.stack.beat(f"beat{i}", loglevel=loglevel)
    return pool


def _finish(chaos: Chaos, pool: WorkerSet, ids: list[str], timeout: float,
            tick: Callable[[int], None] | None = None) -> int:
    """Wait for every post (`tick` hurting the stack meanwhile). Posts still absent from
    the ledger while everything else is final and the broker's queues are empty were
    reserved by workers killed before storing them: Redis gives those back when their
    visibility timeout (1 h) runs out. Simulate that, with every worker stopped so no live
    task is handed out twice, and finish. Returns how many posts were stranded so."""

    def stranded() -> bool:
        known = statuses(chaos.dsn, ids)
        return len(known) < len(ids) and all(s in FINAL for s in known.values()) \
            and broker_backlog(chaos.redis.url) == 0

    if wait_final(chaos.dsn, ids, timeout, tick, settled=stranded) or not stranded():
        return 0
    absent = len(ids) - len(statuses(chaos.dsn, ids))
    chaos.stack.stop()
    redeliver_stranded(chaos.redis.url)
    pool.procs.clear()
    pool.start()
    chaos.stack.beat("beat-after")
    wait_final(chaos.dsn, ids, timeout)
    return absent


def send_and_wait(chaos: Chaos, run: Run, users: list[User], tag: str,
                  rng: random.Random) -> tuple[list[PostSpec], list[str], float]:
    """Send `run.posts` posts of `users` and wait until all are final: the posts, their
    ids and the wall seconds it took."""
    posts = make_posts(users, run.posts, tag, rng)
    ids = [p.id for p in posts]
    start = time.monotonic()
    send_posts(chaos.app, posts)
    wait_final(chaos.dsn, ids, run.timeout)
    return posts, ids, time.monotonic() - start


def _verdict(label: str, chaos: Chaos, pool: WorkerSet, ids: list[str], wall: float,
             notes: list[str], expect: str | frozenset[str] | None = "posted",
             extra: list[str] | None = None) -> Report:
    """The audit of `ids`, plus any process that died by itself: a crash is a finding
    even when other workers covered for it."""
    result = audit(chaos, ids, expect=expect)
    result.problems.extend(extra or [])
    dead = pool.casualties()
    if dead:
        result.problems.append(f"died by itself: {', '.join(dead)}")
    swept = recovered_in_logs(chaos.logs())
    return Report.of(label, result, wall, [*notes, f"sweep re-sent {swept}"] if swept else notes)


def _outcomes(dsn: str, ids: list[str]) -> Counter[str]:
    """Attempt outcomes over the posts (published, transient, ambiguous, ...)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM post_attempts WHERE post_id = ANY(%s::uuid[])"
            " GROUP BY outcome", (ids,)).fetchall()
    return Counter({r[0]: r[1] for r in rows})


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:.1f} posts/s" if seconds > 0 else "-"


# -- 1. kill -9 of workers mid-publish -------------------------------------------------


def worker_kills(run: Run) -> Report:
    """SIGKILL pool processes and whole workers at random moments while posts are in
    flight (the sandbox answers slowly), restarting whole workers killed."""
    rng = run.rng()
    with run.world("kills") as chaos:
        latency = 500 if run.quick else 250
        for provider in ("postforme", "late"):
            chaos.sandbox.set_faults(provider, latency_ms=latency)
        pool = _start(chaos, workers=3, concurrency=2)
        posts = [_strand_one(chaos, pool, rng), *make_posts(chaos.users, run.posts, "kills", rng)]
        ids = [p.id for p in posts]
        start = time.monotonic()
        send_posts(chaos.app, posts[1:])
        # Whole-worker kills strand a claim until its lease (~33 s) runs out: in quick
        # runs only early ones, so that wait overlaps the rest of the workload.
        whole_until = start + (4 if run.quick else run.timeout)
        due = [start + rng.uniform(0.3, 1.0)]

        def kill(done: int) -> None:
            now = time.monotonic()
            if done >= 0.9 * len(ids) or now < due[0]:
                return
            first = not pool.kills["whole worker"]  # at least one whole worker, early
            pool.kill_one(rng, whole=(1.0 if first else 0.4) if now < whole_until else 0.0)
            due[0] = now + rng.uniform(0.3, 1.5)

        stranded = _finish(chaos, pool, ids, run.timeout, kill)
        wall = time.monotonic() - start
        notes = [f"killed {pool.describe()}", _rate(len(ids), wall)]
        if stranded:
            notes.append(f"{stranded} publish message(s) stranded in killed workers, "
                         "redelivered at visibility timeout (simulated)")
        # a create cut off by a kill that PostForMe never stored: it does not deduplicate,
        # so such a post is unconfirmed (with the reason), never resent
        return _verdict("1 worker kills", chaos, pool, ids, wall, notes,
                        expect=frozenset({"posted", "unconfirmed"}))


def _strand_one(chaos: Chaos, pool: WorkerSet, rng: random.Random) -> PostSpec:
    """Kill every worker while one holds a publish request it has not stored yet (its
    insert waits on a lock taken here), so that request's message is stranded in Redis's
    unacked set: the case random kills hit only now and then. Workers are restarted."""
    post = make_posts(chaos.users, 1, "stranded", rng)[0]
    with psycopg.connect(chaos.dsn) as conn, conn.transaction():
        conn.execute("LOCK TABLE social_posts IN SHARE MODE")  # blocks INSERTs, not reads
        send_posts(chaos.app, [post])
        wait_for(lambda: _waiting_inserts(chaos.dsn), 30, "the intake to wait on the lock")
        for proc in pool.alive():
            pool.kill_whole(proc)
        # A backend waiting on a lock does not notice its client died: released, its
        # INSERT would still commit. End it, as if the kill had come a moment earlier.
        for pid in _waiting_inserts(chaos.dsn):
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    pool.start()
    return post


def _waiting_inserts(dsn: str) -> list[int]:
    """Backends whose INSERT into social_posts waits on a lock (beat's UPDATEs may wait
    too: not those)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND query ILIKE '%%INSERT INTO social_posts%%'"
        ).fetchall()
    return [r[0] for r in rows]


# -- 2. Redis restarted empty ----------------------------------------------------------


def redis_loss(run: Run) -> Report:
    """Crash the broker (nothing persisted) while posts are queued, scheduled and in flight;
    the recovery sweep re-enqueues from PostgreSQL. Requests lost before they were stored
    are re-sent by the producer under the same post id (no acceptance came back)."""
    rng = run.rng()
    with run.world("redis") as chaos:
        # 429s: proof nothing was created, so every post must still end posted
        chaos.sandbox.set_faults("postforme", latency_ms=200, rate_limit_rate=0.2,
                                 retry_after=0.5)
        chaos.sandbox.set_faults("late", latency_ms=200)
        pool = _start(chaos, workers=2, concurrency=3)
        half = run.posts // 2
        posts = make_posts(chaos.users, half, "redis-now", rng) + make_posts(
            chaos.users, run.posts - half, "redis-later", rng, schedule_within=(2, 8))
        ids = [p.id for p in posts]
        start = time.monotonic()
        send_posts(chaos.app, posts)
        restarts = [0.6, 0.95] if not run.quick else [0.6]  # of posts stored
        resent: Counter[str] = Counter()
        since = [time.monotonic()]  # the last restart, or the last re-send
        notes: list[str] = []

        def hurt(done: int) -> None:
            stored = statuses(chaos.dsn, ids)
            if restarts and len(stored) >= restarts[0] * len(ids):
                restarts.pop(0)
                in_flight = Counter(s for s in stored.values() if s not in FINAL)
                chaos.redis.restart(down_seconds=1.0)
                since[0] = time.monotonic()
                notes.append(f"Redis restarted with {dict(in_flight)} in flight")
            elif time.monotonic() - since[0] > 8 and len(stored) < len(ids):
                _resend(chaos, posts, stored, resent)
                since[0] = time.monotonic()

        wait_final(chaos.dsn, ids, run.timeout, hurt)
        wall = time.monotonic() - start
        if resent:
            notes.append(f"{len(resent)} request(s) lost before acceptance, re-sent by the "
                         f"producer under the same id ({sum(resent.values())} sends)")
        notes.append(_rate(len(ids), wall))
        return _verdict("2 redis restart", chaos, pool, ids, wall, notes)


def _resend(chaos: Chaos, posts: list[PostSpec], stored: dict[str, str],
            resent: Counter[str]) -> None:
    """The producer's side of at-least-once: a request whose post has not appeared 8 s
    after a broker restart (its message died with the broker) is sent again under the
    same id, which is harmless if it was only slow."""
    missing = [p for p in posts if p.id not in stored]
    if missing and broker_backlog(chaos.redis.url) == 0:
        send_posts(chaos.app, missing)
        resent.update(p.id for p in missing)


# -- 3. PostgreSQL restarted -----------------------------------------------------------


def postgres_restart(run: Run) -> Report:
    """Crash a private PostgreSQL cluster (pg_ctl -m immediate) mid-run: tasks retry,
    workers and beat reconnect by themselves."""
    rng = run.rng()
    cluster = PgCluster().start()
    try:
        with run.world("postgres", admin_dsn=cluster.admin_dsn) as chaos:
            for provider in ("postforme", "late"):
                chaos.sandbox.set_faults(provider, latency_ms=200)
            pool = _start(chaos, workers=2, concurrency=3)
            posts = make_posts(chaos.users, run.posts, "pg", rng)
            ids = [p.id for p in posts]
            marks = [0.25, 0.6]
            notes: list[str] = []
            start = time.monotonic()
            send_posts(chaos.app, posts)

            def hurt(done: int) -> None:
                if marks and done >= marks[0] * len(ids):
                    marks.pop(0)
                    t = time.monotonic()
                    cluster.restart("immediate")
                    notes.append(f"crashed at {done} final, down {time.monotonic() - t:.1f} s")

            wait_final(chaos.dsn, ids, run.timeout, hurt)
            wall = time.monotonic() - start
            notes.append(_rate(len(ids), wall))
            return _verdict("3 postgres restart", chaos, pool, ids, wall, notes)
    finally:
        cluster.destroy()


# -- 4. a flaky primary ----------------------------------------------------------------


def flaky_rates(error: float, hang: float, rate_limited: float) -> dict[str, float]:
    """The sandbox draws 429, then 5xx, then hang, each only if the earlier did not fire:
    conditional rates that give these overall shares of create calls."""
    error_rate = error / (1 - rate_limited)
    hang_rate = hang / ((1 - rate_limited) * (1 - error_rate))
    return {"rate_limit_rate": rate_limited, "error_rate": error_rate, "hang_rate": hang_rate}


def flaky_primary(run: Run) -> Report:
    """PostForMe creates then answers 502 for 25 % of creates, hangs after accepting 10 %
    (past the client's read timeout), answers 429 to 5 % and a plain 503 (nothing made) to
    5 %: none twice, ambiguous creates reconciled by external_id and adopted. A 503 proves
    nothing and PostForMe does not deduplicate, so those posts end `unconfirmed` with the
    reason, never resent. Its accounts also lack bluesky, so some creates cover only part
    of a post (the rest fails over to LATE) and a reconciled one must say so."""
    rng = run.rng()
    settings = {"POSTFORME_READ_TIMEOUT": "1"}
    with run.world("flaky", settings) as chaos:
        chaos.sandbox.set_faults("postforme", retry_after=1, hang_seconds=3,
                                 missing_platforms=["bluesky"], create_then_error_rate=0.25,
                                 create_then_error_status=502,
                                 **flaky_rates(error=0.05, hang=0.10, rate_limited=0.05))
        pool = _start(chaos, workers=2, concurrency=4)
        posts, ids, wall = send_and_wait(chaos, run, chaos.users, "flaky", rng)
        outcomes = _outcomes(chaos.dsn, ids)
        notes = [f"attempts {dict(outcomes)}", _rate(len(ids), wall)]
        bite = [] if outcomes["ambiguous"] else ["no ambiguous outcome: hangs did not bite"]
        return _verdict("4 flaky primary", chaos, pool, ids, wall, notes, extra=bite,
                        expect=frozenset({"posted", "unconfirmed"}))


# -- 5. the primary down ---------------------------------------------------------------


# The production recovery grace: with the suite's 5 s, retries overdue behind the failover
# backlog are re-sent by the sweep, adding to that backlog (32,536 re-sends and 184 s instead
# of 0 and 102 s at 2000 posts), which measures the sweep rather than the failover.
PRODUCTION_STALL = {"SOCIALPOST_STALL_SECONDS": "30"}


def primary_down(run: Run) -> tuple[Report, Report]:
    """The same workload against healthy providers, then with PostForMe refusing every
    connection for the whole run: everything fails over to LATE; the cost is the ratio."""
    healthy = _timed_run(run, "5a healthy baseline", PRODUCTION_STALL, "healthy")
    dead = f"http://127.0.0.1:{free_port()}/postforme/v1"
    down = _timed_run(run, "5 primary down", {**PRODUCTION_STALL, "POSTFORME_BASE_URL": dead},
                      "down")
    if healthy.wall > 0 and down.wall > 0:
        cost = down.wall / healthy.wall
        down.notes.append(f"{cost:.2f}x the healthy run's wall time "
                          f"({healthy.sent / healthy.wall:.1f} -> "
                          f"{down.sent / down.wall:.1f} posts/s)")
    return healthy, down


def _timed_run(run: Run, label: str, settings: dict[str, str], name: str) -> Report:
    rng = run.rng()
    with run.world(name, settings) as chaos:
        pool = _start(chaos, workers=2, concurrency=3)
        posts, ids, wall = send_and_wait(chaos, run, chaos.users, name, rng)
        with psycopg.connect(chaos.dsn) as conn:
            served = Counter(r[0] for r in conn.execute(
                "SELECT provider FROM social_posts WHERE id = ANY(%s::uuid[])", (ids,)))
        notes = [f"served by {dict(served)}", _rate(len(ids), wall)]
        return _verdict(label, chaos, pool, ids, wall, notes)


# -- 6. two beats and two releasers ----------------------------------------------------


def double_release(run: Run) -> Report:
    """Two beat processes (each scheduling release_due_posts) and two more releasers in
    this process, all at once over the same scheduled posts: each released exactly once."""
    rng = run.rng()
    with run.world("release") as chaos:
        pool = _start(chaos, workers=2, concurrency=3, beats=2)
        # Due after the intake has taken them all (~150 requests/s here), else many are
        # stored due and never need releasing.
        lead = 2 + run.posts / 150
        spread = (lead, lead + (4 if run.quick else 18))
        posts = make_posts(chaos.users, run.posts, "release", rng, schedule_within=spread)
        ids = [p.id for p in posts]
        start = time.monotonic()
        answers = send_posts(chaos.app, posts)
        with patched_environ({"DATABASE_URL": chaos.dsn}):
            released, threads, stop = _releasers(chaos, 2)
            try:
                wait_final(chaos.dsn, ids, run.timeout)
            finally:
                stop.set()
                for t in threads:
                    t.join(10)
                from db.pool import close_pools

                close_pools()
        wall = time.monotonic() - start
        # Only posts accepted as scheduled need releasing: one whose time had passed when
        # its request was taken (a backlog at intake) is stored due and sent at once.
        accepted = {p.id: a.get(timeout=60)["status"] for p, a in zip(posts, answers, strict=True)}
        scheduled = {i for i, status in accepted.items() if status == "scheduled"}
        by_beat = released_in_logs(chaos.logs())
        mine = Counter(i for ids_ in released for i in ids_)
        total = by_beat + sum(mine.values())
        wrong = [] if total == len(scheduled) else [
            f"{total} releases for {len(scheduled)} posts accepted as scheduled"]
        twice = [i for i, n in mine.items() if n > 1 or i not in scheduled]
        if twice:
            wrong.append(f"released twice or never scheduled: {twice[:3]}")
        notes = [f"{len(scheduled)} accepted as scheduled, released {by_beat} by the beats' "
                 f"tasks + {' + '.join(str(len(r)) for r in released)} by two releasers here",
                 _rate(len(ids), wall)]
        return _verdict("6 two beats+releasers", chaos, pool, ids, wall, notes, extra=wrong)


def _releasers(chaos: Chaos, count: int) -> tuple[list[list[str]], list[threading.Thread],
                                                  threading.Event]:
    """Threads running the real releaser (tasks.scheduling.release_due) in a loop; each
    sends the delivery by name and keeps the ids it released."""
    from tasks.scheduling import release_due

    stop = threading.Event()
    released: list[list[str]] = [[] for _ in range(count)]

    def loop(mine: list[str]) -> None:
        def send(post_id: str, when: datetime | None) -> None:
            mine.append(post_id)
            chaos.app.send_task("social.deliver", (post_id,), queue="social.publish", eta=when)

        while not stop.is_set():
            release_due(send)
            stop.wait(0.1)

    threads = [threading.Thread(target=loop, args=(r,), daemon=True) for r in released]
    for t in threads:
        t.start()
    return released, threads, stop


# -- 7. bad input ----------------------------------------------------------------------


def bad_input(run: Run, bad: int = 500) -> Report:
    """Malformed requests by name, with good posts alongside, on workers that refuse
    private media URLs: each bad one refused naming its field, no crash, good ones posted."""
    rng = run.rng()
    settings = {"SOCIALPOST_ALLOW_PRIVATE_URLS": "0"}
    with run.world("badinput", settings) as chaos:
        pool = _start(chaos, workers=2, concurrency=3)
        users = [u.id for u in chaos.users]
        requests_ = list(badinput.bad_requests(users, max(bad, 500), rng))
        good = make_posts(chaos.users, run.posts, "good", rng,
                          contents=badinput.GOOD_CONTENTS)
        start = time.monotonic()
        pending = _send_mixed(chaos, requests_, good, rng)
        refused, wrong = _check_refusals(pending, chaos)
        ids = [p.id for p in good]
        wait_final(chaos.dsn, ids, run.timeout)
        wall = time.monotonic() - start
        traces = our_tracebacks(chaos.logs())
        if traces:
            wrong.append(f"{len(traces)} traceback(s) through our code: {traces[0][-600:]}")
        report = _verdict("7 bad input", chaos, pool, ids, wall, extra=wrong, notes=[
            f"{refused}/{len(requests_)} malformed refused naming the field",
            f"{len(good)} good posts alongside", _rate(len(requests_) + len(ids), wall)])
        report.sent += len(requests_)
        report.final += refused
        return report


def _send_mixed(chaos: Chaos, bad: list[badinput.BadRequest], good: list[PostSpec],
                rng: random.Random) -> list[tuple[badinput.BadRequest, Any]]:
    """Send bad and good interleaved; return each bad request with its AsyncResult."""
    queue: list[Any] = [*bad, *good]
    rng.shuffle(queue)
    pending = []
    for item in queue:
        if isinstance(item, PostSpec):
            send_posts(chaos.app, [item])
        else:
            result = chaos.app.send_task("social.publish_post", kwargs=item.kwargs,
                                         queue="social.publish")
            pending.append((item, result))
    return pending


def _check_refusals(pending: list[tuple[badinput.BadRequest, Any]],
                    chaos: Chaos) -> tuple[int, list[str]]:
    """Each acceptance must say failed and name the field; nothing reaches a provider.
    Problems come back one line per kind of request, with one example answer."""
    wrong: dict[str, tuple[int, str]] = {}
    refused = 0
    for request, result in pending:
        try:
            answer = result.get(timeout=120)
        except Exception as exc:  # the task itself failed: that is the bug we look for
            answer = f"the task raised {type(exc).__name__}: {exc}"
        error = str(answer.get("error", "")) if isinstance(answer, dict) else ""
        if isinstance(answer, dict) and answer.get("status") == "failed" \
                and request.field in error:
            refused += 1
            continue
        label = f"{request.field} {request.what}"
        seen, example = wrong.get(label, (0, str(answer)[:200]))
        wrong[label] = (seen + 1, example)
    problems = [f"{n}x {label}: expected a refusal naming the field, got {example}"
                for label, (n, example) in sorted(wrong.items())]
    ids = [r.post_id for r, _ in pending if r.post_id]
    created = {post for post, _ in creates_by_target(chaos.sandbox)}
    reached = [i for i in ids if i in created]
    if reached:
        problems.append(f"{len(reached)} malformed request(s) reached a provider")
    stored = Counter(statuses(chaos.dsn, [i for i in ids if i]).values())
    if set(stored) - {"failed"}:
        problems.append(f"malformed requests stored as {dict(stored)}")
    return refused, problems


# -- 8. secrets ------------------------------------------------------------------------


def secrets(run: Run) -> Report:
    """With recognisable keys (users' saved encrypted, global ones in the worker env) and
    debug logging, look for any key in plain text: logs, broker messages and results,
    Flower's task list, every row of the database. Also a refused key and failing calls,
    so error paths are exercised too."""
    rng = run.rng()
    settings = {"POSTFORME_READ_TIMEOUT": "1"}
    auth = ("ops", recognisable_key("flower"))
    with run.world("secrets", settings) as chaos:
        revoked = _user_with_refused_key(chaos)
        chaos.sandbox.set_faults("postforme", error_rate=0.2, hang_rate=0.05, hang_seconds=2)
        posts = make_posts(chaos.users, run.posts, "secrets", rng)
        posts += make_posts([revoked], max(2, run.posts // 10), "refused-key", rng)
        ids = [p.id for p in posts]
        keys = [*chaos.secrets(), *revoked.keys.values()]
        start = time.monotonic()
        send_posts(chaos.app, posts)  # no worker yet: every message waits in Redis
        broker_queued = redis_dump(chaos.redis.url)
        port = free_port()
        chaos.stack.flower(port, f"{auth[0]}:{auth[1]}")
        flower = f"http://127.0.0.1:{port}"
        pool = _start(chaos, workers=2, concurrency=2, loglevel="debug")
        wait_final(chaos.dsn, ids, run.timeout)
        wall = time.monotonic() - start
        places = {
            "broker (queued)": broker_queued,
            "broker (after)": redis_dump(chaos.redis.url),
            "flower /api/tasks": wait_for(lambda: _flower_with(flower, auth), 30,
                                          "flower to list the tasks"),
            "database": database_dump(chaos.dsn),
            "logs": chaos.logs(),
        }
        notes = [f"{len(keys)} keys searched in {', '.join(places)} "
                 f"({sum(len(t) for t in places.values()) // 1024} KiB)"]
        return _verdict("8 secrets", chaos, pool, ids, wall, notes, expect=None,
                        extra=_leaks(places, keys, posts, chaos))


def _user_with_refused_key(chaos: Chaos) -> User:
    """A user whose saved PostForMe key the provider refuses (401): the error path."""
    user = User(str(uuid.uuid4()), {"postforme": recognisable_key("refused")})
    save_users(chaos.dsn, Vault([chaos.stack.env["ENCRYPTION_KEY"]]), [user])
    return user


def _flower_with(url: str, auth: tuple[str, str]) -> str | None:
    """Flower's task list once it shows our tasks (events arrive asynchronously)."""
    try:
        text = flower_tasks(url, auth)
    except Exception:
        return None
    return text if "social.publish_post" in text else None


def _leaks(places: dict[str, str], keys: list[str], posts: list[PostSpec],
           chaos: Chaos) -> list[str]:
    """Hits, plus proof that each place was really searched (it shows what it should)."""
    problems = []
    for where, text in places.items():
        hits = find_secrets(text, keys)
        if hits:
            problems.append(f"{len(hits)} key(s) in plain text in {where}")
    proofs: dict[str, Callable[[str], bool]] = {
        "broker (queued)": lambda t: posts[0].content in t,  # message bodies decoded
        "flower /api/tasks": lambda t: posts[0].id in t or "social.publish_post" in t,
        "database": lambda t: posts[0].content in t,
        "logs": lambda t: "social.publish_post" in t,
    }
    for where, proof in proofs.items():
        if not proof(places[where]):
            problems.append(f"the search of {where} saw nothing it should have")
    return problems
