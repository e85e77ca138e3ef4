"""`socialpost worker|beat|flower`: the Celery processes, with this project's defaults.

Each replaces itself with `python -m celery -A worker ...` (exec, not a child process), so
the process manager's signals (TERM for a warm shutdown, INT, QUIT) reach Celery itself
and the pid it watches is Celery's. Options after `--` go to Celery unchanged.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Mapping, Sequence

import click

import settings
from worker.commands.common import CONTEXT, BadInput, Command, note

LOGLEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False)
# Options we do not declare go to Celery as they are (so do arguments after --).
PASSTHROUGH = {**CONTEXT, "ignore_unknown_options": True}
DRY_RUN_HELP = "Print the command (secrets masked) instead of running it."


def celery_argv(subcommand: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker", subcommand, *args]


def run_celery(
    argv: list[str], dry_run: bool, env: Mapping[str, str] | None = None,
    shown_env: Mapping[str, str] | None = None,
) -> None:
    """Exec Celery (this process becomes it), or print the command line for --dry-run."""
    if dry_run:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (shown_env or {}).items())
        click.echo((prefix + " " if prefix else "") + shlex.join(argv))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(argv[0], argv, {**os.environ, **(env or {})})
    except OSError as exc:
        raise click.ClickException(f"cannot start celery ({argv[0]}): {exc.strerror}") from None


def checked_settings() -> settings.Settings:
    """Every setting, checked before a process starts: a malformed one is one line naming
    the variable here, not a traceback from Celery's import of celeryconfig, nor every
    task failing later."""
    try:
        return settings.check()
    except settings.SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _known_queues() -> list[str]:
    try:
        import celeryconfig
    except settings.SettingsError as exc:  # pragma: no cover - checked_settings ran first
        raise click.ClickException(str(exc)) from None
    return [q.name for q in celeryconfig.task_queues]


@click.command("worker", cls=Command, context_settings=PASSTHROUGH)
@click.option("-c", "--concurrency", metavar="N",
              help="Tasks at once: threads, or child processes with -P prefork "
                   "(default: SOCIALPOST_WORKER_CONCURRENCY, 8; 'auto' follows the cgroup "
                   "quota).")
@click.option("-Q", "--queues", "queues", multiple=True, metavar="NAME[,NAME]",
              help="Consume only these queues (default: celery, social.publish, "
                   "social.maintenance, social.events).")
@click.option("-l", "--loglevel", type=LOGLEVELS, default="INFO", show_default=True)
@click.option("-n", "--hostname", metavar="NAME@HOST", help="Node name (default celery@%h).")
@click.option("-P", "--pool", metavar="POOL",
              help="threads (default: SOCIALPOST_WORKER_POOL), prefork for CPU-heavy work, "
                   "solo, ...")
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- CELERY_ARGS...]")
def worker(
    concurrency: str | None,
    queues: tuple[str, ...],
    loglevel: str,
    hostname: str | None,
    pool: str | None,
    dry_run: bool,
    extra: tuple[str, ...],
) -> None:
    """Run a Celery worker: `celery -A worker worker` with these options.

    Publishing and maintenance have queues of their own, so they can be split across
    machines with -Q. Stop it with TERM (finishes running tasks) or INT.

    \b
    Examples:
      socialpost worker --concurrency 8
      socialpost worker -Q social.publish -c 16 -- --max-tasks-per-child 1000
    """
    checked_settings()
    args = ["--loglevel", loglevel.upper()]
    if concurrency is not None:
        if not (concurrency == "auto" or (concurrency.isdigit() and int(concurrency) > 0)):
            raise BadInput(f"--concurrency: must be a positive number or 'auto', got "
                           f"{concurrency!r}")
        args += ["--concurrency", concurrency]
    names = [q.strip() for value in queues for q in value.split(",") if q.strip()]
    if names:
        known = _known_queues()
        unknown = [q for q in names if known and q not in known]
        if unknown:
            note(f"warning: no task is routed to {', '.join(unknown)} "
                 f"(queues: {', '.join(known)})")
        args += ["--queues", ",".join(names)]
    if hostname:
        args += ["--hostname", hostname]
    env: dict[str, str] = {}
    if pool:
        args += ["--pool", pool]
        if pool in settings.WORKER_POOLS:
            # Celery takes `-P prefork` for its default and lets the configured pool
            # (SOCIALPOST_WORKER_POOL, threads) win: name it in the setting too.
            env["SOCIALPOST_WORKER_POOL"] = pool
    run_celery(celery_argv("worker", [*args, *extra]), dry_run, env, env)


def state_dir() -> str:
    """Where beat keeps its schedule: SOCIALPOST_STATE_DIR, default .state/ (created)."""
    path = checked_settings().state_dir
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(
            f"SOCIALPOST_STATE_DIR: cannot create {path!r}: {exc.strerror}"
        ) from None
    return path


@click.command("beat", cls=Command, context_settings=PASSTHROUGH)
@click.option("-l", "--loglevel", type=LOGLEVELS, default="INFO", show_default=True)
@click.option("-s", "--schedule", metavar="PATH",
              help="Schedule file (default: $SOCIALPOST_STATE_DIR/celerybeat-schedule, "
                   "SOCIALPOST_STATE_DIR defaulting to .state).")
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- CELERY_ARGS...]")
def beat(loglevel: str, schedule: str | None, dry_run: bool, extra: tuple[str, ...]) -> None:
    """Run Celery beat: releases due scheduled posts, recovers stalled ones, collects
    results and refreshes connected platforms, on the intervals in celeryconfig.

    Several beats may run at once (releases never double up), but one is enough.
    """
    config = checked_settings()
    if schedule is None:
        state_dir()
        schedule = config.beat_schedule_file
    else:
        parent = os.path.dirname(schedule)
        if parent:
            os.makedirs(parent, exist_ok=True)
    args = ["--loglevel", loglevel.upper(), "--schedule", schedule]
    run_celery(celery_argv("beat", [*args, *extra]), dry_run)


def _check_basic_auth(value: str) -> str:
    pairs = [p.strip() for p in value.split(",")]
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not (sep and user and password):
            # never echo the value: it holds passwords
            raise BadInput("--basic-auth / FLOWER_BASIC_AUTH: expected user:password "
                           "(comma-separate several)")
    return ",".join(pairs)


@click.command("flower", cls=Command, context_settings=PASSTHROUGH)
@click.option("--port", type=click.IntRange(1, 65535), help="HTTP port (default 5555).")
@click.option("--address", metavar="HOST", help="Address to listen on (default: all).")
@click.option("--basic-auth", "basic_auth", metavar="USER:PASS",
              help="Require HTTP basic auth (comma-separate several); or FLOWER_BASIC_AUTH.")
@click.option("--no-auth", is_flag=True,
              help="Run without any authentication (only behind a trusted proxy).")
@click.option("--url-prefix", metavar="PATH", help="Serve under this path, behind a proxy.")
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- FLOWER_ARGS...]")
def flower(
    port: int | None,
    address: str | None,
    basic_auth: str | None,
    no_auth: bool,
    url_prefix: str | None,
    dry_run: bool,
    extra: tuple[str, ...],
) -> None:
    """Run Flower, the web monitor (`celery -A worker flower`).

    Flower can revoke tasks and shut workers down, so it refuses to start without basic
    auth unless --no-auth is given. The credentials reach Flower through its environment,
    never its command line (which `ps` shows). Arguments after -- are Flower's own, in
    --name=value form.
    """
    basic_auth = basic_auth or checked_settings().flower_basic_auth
    in_extra = any(a.startswith(("--basic-auth", "--basic_auth")) for a in extra)
    if basic_auth and no_auth:
        raise BadInput("--no-auth: conflicts with --basic-auth / FLOWER_BASIC_AUTH; pick one")
    if not (basic_auth or in_extra or no_auth):
        raise click.ClickException(
            "refusing to start Flower without authentication: give --basic-auth user:password "
            "(or set FLOWER_BASIC_AUTH), or --no-auth to run it open on purpose"
        )
    args = []
    if port is not None:
        args.append(f"--port={port}")
    if address is not None:
        args.append(f"--address={address}")
    if url_prefix is not None:
        args.append(f"--url_prefix={url_prefix}")
    env: dict[str, str] = {}
    shown: dict[str, str] = {}
    if basic_auth:
        env["FLOWER_BASIC_AUTH"] = _check_basic_auth(basic_auth)
        shown["FLOWER_BASIC_AUTH"] = "***"
    elif no_auth:
        note("warning: Flower runs without authentication (--no-auth)")
    run_celery(celery_argv("flower", [*args, *extra]), dry_run, env, shown)
