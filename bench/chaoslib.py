"""The fault suite's machinery, shared by bench/chaos.py (full size) and tests/test_faults.py
(quick): a real stack per scenario, a workload, ways to hurt it, and the audit that proves
nothing was lost or doubled.

Everything is real: a scratch PostgreSQL database, a private Redis (restartable without
disturbing the machine's shared one), the sandbox for both providers, and `celery worker` /
`celery beat` subprocesses started through tests/stack.py. The audit reads only the ledger
and the sandbox's own counters, never what the workers say about themselves.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from celery import Celery
from cryptography.fernet import Fernet

from bench.harness import ADMIN_DSN, ROOT, RedisServer, free_port, scratch_database
from db import credentials
from db.pool import connect
from db.vault import Vault
from providers.sandbox import SandboxServer
from tests.stack import Proc, Stack

FINAL = frozenset({"posted", "partial", "failed", "unconfirmed", "cancelled"})
IN_FLIGHT = ("queued", "publishing")
# Platforms that take text alone (instagram, tiktok, pinterest need media; youtube a video).
TEXT_PLATFORMS = ("twitter", "linkedin", "facebook", "threads", "bluesky")
PUBLISH_QUEUE = "social.publish"
# Queues whose messages carry posts (beat's maintenance queue never stays empty for long
# and holds none, so it must not count as a backlog of posts).
POST_QUEUES = ("celery", PUBLISH_QUEUE)

# On top of tests/stack.py's TEST_SETTINGS: short provider timeouts, so a claim's lease
# (slowest call + 30 s) and a killed worker's recovery stay short; the account list
# cached as in production, so the sandbox serves creates rather than account lists.
CHAOS_SETTINGS = {
    "SOCIALPOST_CONNECT_TIMEOUT": "1",
    "POSTFORME_READ_TIMEOUT": "2",
    "LATE_READ_TIMEOUT": "2",
    "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "300",
    "SOCIALPOST_RELEASE_INTERVAL": "0.5",
    "SOCIALPOST_STALL_SECONDS": "5",
    "SOCIALPOST_RECOVER_INTERVAL": "2",
    # Flow control on (every call takes a permit, 429s block the key, circuits open on a
    # 5xx storm) with budgets high enough for thousands of posts on the global keys.
    "POSTFORME_RATE_LIMITS": "1000/second",
    "LATE_RATE_LIMITS": "1000/second",
    "SOCIALPOST_ACCOUNT_CAPS": "none",
}


# -- the environment -------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    """A user and the provider keys saved for them (encrypted) in PostgreSQL."""

    id: str
    keys: Mapping[str, str]


@dataclass
class Chaos:
    """One scenario's running world. `stack` starts empty: the scenario adds processes."""

    dsn: str
    redis: RedisServer
    sandbox: SandboxServer
    stack: Stack
    app: Celery
    users: list[User]
    global_keys: dict[str, str]
    workdir: Path

    def logs(self) -> str:
        """Every process log of this world, including those of processes killed or
        stopped (the stack forgets those)."""
        return "\n".join(f"==== {f.name}\n{f.read_text(errors='replace')}"
                         for f in sorted(self.workdir.glob("*.log")))

    def secrets(self) -> list[str]:
        """Every API key this world knows, user and global."""
        return [*self.global_keys.values(), *(k for u in self.users for k in u.keys.values())]


def producer(url: str) -> Celery:
    """A producer that knows only the broker URL and task names, like another service."""
    app = Celery("chaos-producer", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 30, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 2},
        broker_connection_retry_on_startup=True,
    )
    return app


def recognisable_key(label: str) -> str:
    """A key nobody could mistake for anything else when it turns up in a dump."""
    return f"SECRET-{label}-{uuid.uuid4().hex}"


def _user_keys(index: int) -> tuple[str, ...]:
    """A mix of chains: global only, user PostForMe only, user PostForMe and LATE."""
    return ((), ("postforme",), ("postforme", "late"), ("postforme", "late"))[index % 4]


def make_users(
    dsn: str, sandbox: SandboxServer, vault: Vault, count: int
) -> list[User]:
    """Users whose keys the sandbox knows (all nine platforms) and PostgreSQL stores."""
    users = [
        User(str(uuid.uuid4()), {p: recognisable_key(f"user-{p}") for p in _user_keys(i)})
        for i in range(count)
    ]
    save_users(dsn, vault, users, sandbox)
    return users


def save_users(
    dsn: str, vault: Vault, users: Iterable[User], sandbox: SandboxServer | None = None
) -> None:
    """Store each user's keys encrypted; `sandbox` (when given) learns them too."""
    with connect(dsn) as conn:
        for user in users:
            for provider, key in user.keys.items():
                if sandbox is not None:
                    sandbox.register_key(provider, key)
                credentials.save_credentials(conn, vault, user.id, provider, key)


@contextmanager
def chaos_env(
    sandbox: SandboxServer,
    settings: Mapping[str, str] | None = None,
    *,
    users: int = 8,
    admin_dsn: str = ADMIN_DSN,
    workdir: Path | None = None,
) -> Iterator[Chaos]:
    """A scratch database, a private Redis and a reset sandbox with keys registered; the
    worker environment carries the global keys and `settings`. Torn down on exit."""
    sandbox.reset()
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix="sp-chaos-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    encryption_key = Fernet.generate_key().decode()
    global_keys = {p: recognisable_key(f"global-{p}") for p in ("postforme", "late")}
    for provider, key in global_keys.items():
        sandbox.register_key(provider, key)
    redis = RedisServer().start()
    try:
        with scratch_database(admin_dsn, prefix="sp_chaos") as dsn:
            env = {
                "DATABASE_URL": dsn,
                "REDIS_URL": redis.url,
                "ENCRYPTION_KEY": encryption_key,
                "POSTFORME_BASE_URL": sandbox.postforme_url,
                "LATE_BASE_URL": sandbox.late_url,
                "POSTFORME_API_KEY": global_keys["postforme"],
                "LATE_API_KEY": global_keys["late"],
                **CHAOS_SETTINGS,
                **(settings or {}),
            }
            stack = Stack.create(base, env)
            people = make_users(dsn, sandbox, Vault([encryption_key]), users)
            app = producer(redis.url)
            try:
                yield Chaos(dsn, redis, sandbox, stack, app, people, global_keys, base)
            finally:
                stack.stop()
                app.close()
    finally:
        redis.stop()
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables in this process for the block (code that reads DATABASE_URL itself)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the workload ----------------------------------------------------------------------


@dataclass(frozen=True)
class PostSpec:
    """One publish request with a producer-chosen id (so the audit knows what to find)."""

    id: str
    user_id: str
    content: str
    platforms: tuple[str, ...]
    scheduled_for: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "content": self.content,
            "platforms": list(self.platforms),
            "scheduled_for": self.scheduled_for,
            "post_id": self.id,
        }


def make_posts(
    users: list[User],
    count: int,
    tag: str,
    rng: random.Random,
    *,
    schedule_within: tuple[float, float] | None = None,
    contents: Iterable[str] = (),
) -> list[PostSpec]:
    """`count` posts with distinct content (LATE refuses the same text twice on one
    account), one to three text platforms each; some scheduled when asked."""
    extra = list(contents)
    now = datetime.now(UTC)
    posts = []
    for i in range(count):
        when = None
        if schedule_within is not None:
            when = (now + timedelta(seconds=rng.uniform(*schedule_within))).isoformat()
        body = extra[i % len(extra)] if extra else "chaos"
        posts.append(PostSpec(
            id=str(uuid.uuid4()),
            user_id=rng.choice(users).id,
            content=f"{tag} #{i} {uuid.uuid4().hex[:8]}: {body}",
            platforms=tuple(rng.sample(TEXT_PLATFORMS, rng.randint(1, 3))),
            scheduled_for=when,
        ))
    return posts


def send_posts(app: Celery, posts: Iterable[PostSpec]) -> list[Any]:
    """Enqueue by task name, as any producer would; the AsyncResults hold the acceptances."""
    return [app.send_task("social.publish_post", kwargs=post.kwargs(), queue=PUBLISH_QUEUE)
            for post in posts]


# -- observing the ledger --------------------------------------------------------------


def statuses(dsn: str, ids: list[str]) -> dict[str, str]:
    """post id -> status, for the ids that exist."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT id::text, status FROM social_posts WHERE id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def final_count(dsn: str, ids: list[str]) -> int:
    return sum(1 for s in statuses(dsn, ids).values() if s in FINAL)


def broker_backlog(url: str) -> int:
    """Post messages waiting in the broker's queues (not those reserved by workers)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        return sum(int(client.llen(q)) for q in POST_QUEUES)
    except redis.ConnectionError:
        return -1
    finally:
        client.close()


def wait_final(
    dsn: str,
    ids: list[str],
    timeout: float,
    tick: Callable[[int], None] | None = None,
    every: float = 0.25,
    settled: Callable[[], bool] | None = None,
) -> bool:
    """Wait until every id is final; `tick(final_so_far)` runs between polls (the fault
    injector). Also stops early once `settled()` has held for 5 s (nothing more can come).
    False when not all are final: the audit then counts what is missing as lost."""
    deadline = time.monotonic() + timeout
    calm_since: float | None = None
    shown = time.monotonic()
    while True:
        done = final_count(dsn, ids)
        if done == len(ids):
            return True
        now = time.monotonic()
        if now > deadline:
            return False
        if settled is not None:
            calm_since = (calm_since or now) if settled() else None
            if calm_since is not None and now - calm_since > 5:
                return False
        if VERBOSE and now - shown > 5:
            shown = now
            print(f"   {done}/{len(ids)} final", flush=True)
        if tick is not None:
            tick(done)
        time.sleep(every)


VERBOSE = bool(os.environ.get("CHAOS_VERBOSE"))


# -- the audit -------------------------------------------------------------------------


Target = tuple[str, str]  # (post id, platform)


def creates_by_target(sandbox: SandboxServer) -> Counter[Target]:
    """Creates the providers really performed, per post and platform, over every step and
    both providers (the idempotency key is f"{post_id}-s{step}"; a LATE replay creates
    nothing). Finer than counting creates per post, which a post legitimately split over
    two providers (an account missing at the first) would count twice."""
    counted: Counter[Target] = Counter()
    for pairs in sandbox.created_targets().values():
        for ident, platform in pairs:
            if ident:
                counted[(ident.rsplit("-s", 1)[0], platform)] += 1
    return counted


@dataclass
class Audit:
    """What the ledger and the providers say about a set of posts."""

    sent: int
    statuses: Counter[str]
    final: int
    lost: list[str]  # not final (or absent) when the waiting ended
    duplicated: dict[str, int]  # post id -> most creates of one of its targets, when > 1
    problems: list[str] = field(default_factory=list)


def _ledger(dsn: str, ids: list[str]) -> tuple[dict[str, tuple[str, str | None]],
                                               dict[Target, str], int]:
    """Posts (status, error), targets (status) and how many posts of the whole database
    are still queued or publishing."""
    with psycopg.connect(dsn) as conn:
        posts = conn.execute(
            "SELECT id::text, status, error_message FROM social_posts"
            " WHERE id = ANY(%s::uuid[])", (ids,)).fetchall()
        targets = conn.execute(
            "SELECT post_id::text, platform, status FROM post_targets"
            " WHERE post_id = ANY(%s::uuid[])", (ids,)).fetchall()
        leftover = conn.execute(
            "SELECT count(*) FROM social_posts WHERE status = ANY(%s)", (list(IN_FLIGHT),)
        ).fetchone()
    return ({r[0]: (r[1], r[2]) for r in posts}, {(r[0], r[1]): r[2] for r in targets},
            leftover[0] if leftover else 0)


def audit(chaos: Chaos, ids: list[str], *,
          expect: str | frozenset[str] | None = "posted") -> Audit:
    """Check every post: final, a reason when it did not post, each target created at most
    once at the providers and recorded posted only if created (and never recorded failed
    when created), and nothing in the whole database still in flight."""
    by_id, targets, leftover = _ledger(chaos.dsn, ids)
    creates = creates_by_target(chaos.sandbox)
    counts = Counter(s for s, _ in by_id.values())
    lost = [i for i in ids if by_id.get(i, ("absent", None))[0] not in FINAL]
    dup: dict[str, int] = {}
    for (post, _), n in creates.items():
        if n > 1 and post in by_id:
            dup[post] = max(n, dup.get(post, 0))
    problems = []
    if lost:
        left = Counter(by_id.get(i, ("absent", None))[0] for i in lost)
        problems.append(f"{len(lost)} post(s) not final {dict(left)}: {sample(lost)}")
    if dup:
        problems.append(f"{len(dup)} post(s) with a target created more than once: "
                        f"{sample(dup.items())}")
    unexplained = [i for i, (s, e) in by_id.items()
                   if s in ("failed", "unconfirmed", "partial") and not (e or "").strip()]
    if unexplained:
        problems.append(f"{len(unexplained)} post(s) failed without a reason: "
                        f"{sample(unexplained)}")
    phantom = [t for t, s in targets.items() if s == "posted" and not creates[t]]
    if phantom:
        problems.append(f"{len(phantom)} target(s) recorded posted but never created at a "
                        f"provider: {sample(phantom)}")
    hidden = [(t, s) for t, s in targets.items()
              if s in ("failed", "cancelled", "pending") and creates[t]]
    if hidden:
        problems.append(f"{len(hidden)} target(s) created at a provider but recorded "
                        f"otherwise: {sample(hidden)}")
    if leftover:
        problems.append(f"{leftover} post(s) in the database still queued or publishing")
    wanted = {expect} if isinstance(expect, str) else set(expect or ())
    if expect is not None and set(counts) - wanted:
        problems.append(f"expected every post {' or '.join(sorted(wanted))}, got "
                        f"{dict(counts)}; e.g. "
                        f"{sample([(i, e) for i, (s, e) in by_id.items() if s not in wanted])}")
    # `unconfirmed` is honest only where a send may have landed: the reason must say so
    guessed = [i for i, (s, e) in by_id.items()
               if s == "unconfirmed" and "unknown" not in (e or "") and "may have" not in (e or "")]
    if guessed:
        problems.append(f"{len(guessed)} post(s) unconfirmed without an unknown outcome: "
                        f"{sample(guessed)}")
    return Audit(len(ids), counts, sum(counts[s] for s in FINAL), lost, dup, problems)


def sample(items: Iterable[Any], n: int = 3) -> str:
    shown = list(items)
    more = f" (+{len(shown) - n} more)" if len(shown) > n else ""
    return ", ".join(str(x) for x in shown[:n]) + more


@dataclass
class Report:
    """One row of the chaos table."""

    scenario: str
    sent: int
    final: int
    duplicated: int
    lost: int
    wall: float
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @classmethod
    def of(cls, scenario: str, result: Audit, wall: float, notes: list[str]) -> Report:
        return cls(scenario, result.sent, result.final, len(result.duplicated),
                   len(result.lost), wall, notes, list(result.problems))


# -- hurting the stack -----------------------------------------------------------------


def pool_children(pid: int) -> list[int]:
    """A prefork worker's pool processes (its direct children)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


@dataclass
class WorkerSet:
    """Workers of one scenario, kept at `size` by restarting those killed."""

    stack: Stack
    size: int
    concurrency: int
    loglevel: str = "info"
    procs: list[Proc] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    killed: set[int] = field(default_factory=set)  # main pids we killed on purpose

    def start(self) -> WorkerSet:
        while len(self.alive()) < self.size:
            self.procs.append(self.stack.worker(concurrency=self.concurrency,
                                                loglevel=self.loglevel))
        return self

    def alive(self) -> list[Proc]:
        return [p for p in self.procs if p.alive()]

    def kill_one(self, rng: random.Random, whole: float = 0.4) -> None:
        """SIGKILL a random pool process (its task is requeued: reject_on_worker_lost), or
        with probability `whole` a whole worker, main process and pool (its unacked
        messages stay in Redis), then start a replacement."""
        live = self.alive()
        if not live:
            self.start()
            return
        victim = rng.choice(live)
        children = pool_children(victim.popen.pid)
        if children and rng.random() >= whole:
            try:
                os.kill(rng.choice(children), signal.SIGKILL)
                self.kills["pool process"] += 1
            except ProcessLookupError:
                pass
            return
        self.kill_whole(victim)
        self.start()

    def kill_whole(self, victim: Proc) -> None:
        """SIGKILL a worker's main process and pool at once (not restarted here)."""
        self.killed.add(victim.popen.pid)
        self.stack.kill(victim, signal.SIGKILL)
        victim.popen.wait(10)
        self.kills["whole worker"] += 1

    def casualties(self) -> list[str]:
        """Processes of the stack (workers, beats, Flower) that died without our doing."""
        return [f"{p.name} (exit {p.popen.returncode})" for p in self.stack.procs
                if not p.alive() and p.popen.pid not in self.killed]

    def describe(self) -> str:
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.kills.items())) or "no kills"


def redeliver_stranded(url: str) -> int:
    """Put messages held by dead workers back on their queues, as Redis does once their
    visibility timeout (SOCIALPOST_VISIBILITY_TIMEOUT, 1 h) has run out. Only safe with
    no worker alive: a live worker's reserved message would be run twice."""
    from kombu import Connection

    with Connection(url, transport_options={"visibility_timeout": 0}) as conn:
        channel: Any = conn.default_channel
        held = int(channel.client.hlen(channel.unacked_key))
        if held:
            channel.qos.restore_visible(start=0, num=held + 10, interval=1)
        return held


def restart_redis(chaos: Chaos, down_seconds: float = 1.0) -> None:
    """Crash the scenario's Redis and start it again empty (no RDB, no AOF)."""
    chaos.redis.restart(down_seconds)


class PgCluster:
    """A private PostgreSQL cluster (initdb + pg_ctl) on a free port in a folder of its
    own, so the restart scenario never disturbs the machine's shared server. Runs the
    server as `postgres` when we are root (PostgreSQL refuses to run as root)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sp-chaos-pg-"))
        self.port = free_port()

    @staticmethod
    def bindir() -> Path | None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        return found[-1].parent if found else None

    def _run(self, *args: str) -> None:
        bindir = self.bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        cmd = [str(bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PgCluster:
        """initdb on first use, then start and wait until it accepts connections."""
        if not self.data.exists():
            if os.geteuid() == 0:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8")
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                "-c fsync=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l",
                  str(self.root / "server.log"), "-w", "start")
        return self

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash: every connection drops, crash recovery on start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "immediate", down_seconds: float = 2.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


# -- secrets ---------------------------------------------------------------------------


def find_secrets(text: str, secrets: Iterable[str]) -> list[str]:
    """Which secrets occur in `text` (whole, or their random part alone)."""
    hits = []
    for secret in secrets:
        if secret in text or secret.rsplit("-", 1)[-1] in text:
            hits.append(secret)
    return hits


def redis_dump(url: str) -> str:
    """Every key and value of the Redis db, with Celery message bodies base64-decoded."""
    import redis

    client: Any = redis.Redis.from_url(url)
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "hash":
            values = [x for kv in client.hgetall(key).items() for x in kv]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        parts.append(key.decode(errors="replace"))
        parts.extend(_decoded(v) for v in values)
    client.close()
    return "\n".join(parts)


def _decoded(raw: bytes) -> str:
    """A broker value as text, plus the body of any Celery message inside it."""
    text = raw.decode(errors="replace")
    bodies = [text]
    for match in re.finditer(r'"body": "([A-Za-z0-9+/=]+)"', text):
        try:
            bodies.append(base64.b64decode(match.group(1)).decode(errors="replace"))
        except ValueError:
            continue
    return "\n".join(bodies)


def database_dump(dsn: str) -> str:
    """Every row of every table of the public schema, as text."""
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        out: list[str] = []
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # noqa: S608
            out.extend(r[0] for r in rows)
    return "\n".join(out)


def flower_tasks(url: str, auth: tuple[str, str]) -> str:
    import requests

    answer = requests.get(f"{url}/api/tasks", auth=auth, timeout=20)
    answer.raise_for_status()
    return json.dumps(answer.json())


# -- worker logs -----------------------------------------------------------------------

_OUR_FRAME = re.compile(r'File "' + re.escape(str(ROOT)) + r'/(?!\.venv/)')


def our_tracebacks(log: str) -> list[str]:
    """Tracebacks in a log that pass through our own code (not the venv's)."""
    found = []
    for block in re.split(r"(?=Traceback \(most recent call last\))", log)[1:]:
        head = block[:4000]
        if _OUR_FRAME.search(head):
            found.append(head[:1500])
    return found


def released_in_logs(logs: str) -> int:
    """Posts released by beat's release task, summed over the workers' info logs."""
    return sum(int(n) for n in re.findall(r"released (\d+) scheduled post", logs))


def recovered_in_logs(logs: str) -> int:
    """Posts the recovery sweep handed back to a worker, summed over the workers' logs."""
    return sum(int(n) for n in re.findall(r"recovered (\d+) stalled post", logs))
