"""`socialpost demo`: the command, and the order in which it starts and stops things.

What the demo shows, and why, is in the `worker.demo` package; this module only parses the
options and runs its parts in turn inside one teardown, so that whatever it started is
stopped however it ends.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from worker.commands.procs import checked_settings
from worker.commands.procs import state_dir as base_state_dir
from worker.demo.output import Out
from worker.demo.processes import (
    answers,
    check_children,
    flower_answers,
    start_processes,
    teardown,
    wait_ready,
    warn_about_other_workers,
)
from worker.demo.report import print_json, report, summarise
from worker.demo.scenario import (
    FAILOVER_PLATFORM,
    PLATFORMS,
    Keys,
    process_env,
    producer_app,
    publish,
    seed_user,
    wait_for_posts,
    wait_for_urls,
)
from worker.demo.stores import apply_migrations, encryption_key, start_stores

# Settings this process needs too: it stores the user and campaign and enqueues the posts.
SHARED_WITH_PRODUCER = (
    "DATABASE_URL", "REDIS_URL", "ENCRYPTION_KEY", "SOCIALPOST_ALLOW_PRIVATE_URLS",
    "LATE_API_KEY",  # the client checks that an X thread has a LATE key to go through
)


@dataclass
class Options:
    exit_when_done: bool
    as_json: bool
    state_dir: Path
    timeout: float
    delay: float
    flower_port: int
    api_port: int


def demo_token(user_id: str) -> str:
    """A token scoped to the demo's user, to try the API with (the demo is local only)."""
    from db import tokens
    from db.pool import connect

    with connect() as conn:
        return tokens.create_token(conn, "demo", [user_id])[1]


def default_state_dir() -> Path:
    """$SOCIALPOST_STATE_DIR/demo, the state folder defaulting to .state as for beat."""
    return Path(base_state_dir()) / "demo"


def run(opts: Options, out: Out) -> dict[str, Any]:
    """Start everything, publish, wait, report; stop it all on the way out."""
    from providers.sandbox import SandboxServer

    began = time.monotonic()
    logs = opts.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with teardown(out) as stack:
        stores = start_stores(opts.state_dir, logs, stack, out)
        sandbox = SandboxServer("127.0.0.1", 0).start()
        stack.callback(sandbox.stop)
        keys = Keys()
        env = process_env(stores, encryption_key(opts.state_dir), sandbox, keys, opts.state_dir)
        for name in SHARED_WITH_PRODUCER:
            os.environ[name] = env[name]
        apply_migrations(stores.database_url, stack, out)
        started = start_processes(env, opts.flower_port, opts.api_port, logs, stack)
        children, flower_url, node = started.children, started.flower_url, started.node
        out.line(f"sandbox: {sandbox.url}; worker, beat, Flower and the API log to {logs}")
        wait_ready(started)
        out.line(f"worker ready; Flower at {flower_url}; HTTP API at {started.api_url} "
                 f"(docs at {started.api_url}/docs)")
        app = producer_app(env.get("CELERY_BROKER_URL") or stores.redis_url,
                           env.get("CELERY_RESULT_BACKEND") or stores.redis_url)
        stack.callback(app.close)
        if not stores.embedded_redis:
            warn_about_other_workers(app, node, out)
        user_id = seed_user(sandbox, keys)
        out.line(f"try it: curl -H 'Authorization: Bearer {demo_token(user_id)}' "
                 f"'{started.api_url}/v1/posts?user_id={user_id}'")
        posts = publish(app, sandbox.url, user_id, opts.delay)
        out.line(f"enqueued {len(posts)} posts to {len(PLATFORMS)} platforms "
                 f"(batch 2 due in {opts.delay:g}s; {FAILOVER_PLATFORM} will fail over)")
        finished = wait_for_posts(posts, children, out, opts.timeout, began)
        if finished:
            wait_for_urls(posts, 8.0)
        summary = summarise(posts, finished)
        summary.update(
            elapsed_seconds=round(time.monotonic() - began, 2), flower_url=flower_url,
            api_url=started.api_url, api_ok=answers(f"{started.api_url}/readyz"),
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
@click.option("--api-port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The HTTP API's port on 127.0.0.1 (a free one if taken; 0 = any).")
def demo(
    exit_when_done: bool, as_json: bool, state_dir: Path | None, timeout: float, delay: float,
    flower_port: int, api_port: int,
) -> None:
    """See the whole system work: a campaign across all nine platforms, one batch
    scheduled a few seconds ahead, one platform failing over from PostForMe to LATE.

    Uses DATABASE_URL and REDIS_URL when set, else an embedded PostgreSQL and Redis (the
    `demo` extra: pip install 'social-posting[demo]'). Serves a local provider sandbox and
    runs a Celery worker, beat, Flower and the HTTP API (its URL and a token for the
    demo's user are printed); shows progress, then a table of outcomes per
    platform, and keeps everything running until Ctrl-C (or exits with --exit).
    """
    checked_settings()
    out = Out(to_stderr=as_json)
    opts = Options(exit_when_done, as_json, (state_dir or default_state_dir()).resolve(),
                   timeout, delay, flower_port, api_port)
    opts.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(opts, out)
    except KeyboardInterrupt:
        if exit_when_done:
            sys.exit(130)
        return
    except BrokenPipeError:
        if not out.closed:  # a socket's, not our reader's: not ours to hide
            raise
        sys.exit(1)  # the reader went away (`| head`); everything has been stopped
    if as_json:
        print_json(summary)
    if not summary["ok"]:
        sys.exit(1)
