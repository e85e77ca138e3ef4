"""`socialpost post`, `batch` and `cancel`: the producer client (tasks.client) from a shell.

The client validates before sending, so bad input is refused here (exit 2, the message
names the field) instead of becoming a failed post later. The post id goes to stdout
alone, so scripts can capture it; everything else goes to stderr.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

import click

from worker.commands import render, views
from worker.commands.common import (
    CONTEXT,
    BadInput,
    Command,
    cli_errors,
    db_connection,
    note,
    platforms_option,
    read_text_argument,
)
from worker.commands.follow import wait_final
from worker.commands.overrides_option import overrides_options, read_overrides

WAIT_HELP = "Wait until the post is final and show its targets (exit 1 unless posted)."
TIMEOUT_HELP = "With --wait: give up after this many seconds (0 = no limit)."


def producer() -> Any:
    """The producer client on a send-only app: celeryconfig's routes, the broker from
    CELERY_BROKER_URL / REDIS_URL as they are now, and no result backend.

    Without a backend send_task does not subscribe to each task's result channel: a CLI
    reads outcomes from the ledger, and an unreachable result store cannot stall it for
    20 s and end in a traceback. The broker is probed first so a dead one fails at once.
    """
    from celery import Celery

    import settings
    from tasks.client import PublishClient

    app = Celery("socialpost-cli", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = settings.current().broker_url
    app.conf.result_backend = None
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2, timeout=5)
    return PublishClient(app)


def _options_json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at char {exc.pos}"
        raise BadInput(f"--platform-options: not valid JSON ({where})") from None
    if not isinstance(value, dict):
        raise BadInput("--platform-options: must be a JSON object keyed by platform")
    return value


def _accounts_option(values: tuple[str, ...]) -> dict[str, str] | None:
    """`--account PLATFORM=ID` (repeatable) as account_ids."""
    out: dict[str, str] = {}
    for value in values:
        platform, sep, account = value.partition("=")
        if not sep or not platform.strip() or not account.strip():
            raise BadInput(f"--account: expected PLATFORM=ACCOUNT_ID, got {value!r}")
        out[platform.strip().lower()] = account.strip()
    return out or None


ACCOUNT_HELP = ("Post PLATFORM to this provider account id (repeatable): picks among the "
                "accounts the user may use (`socialpost accounts --user U`).")


def _when_text(at: str | None) -> str:
    return f"scheduled for {at}" if at else "to publish now"


def finish_waiting(post_id: str, timeout: float) -> None:
    """Wait for the post, show header and targets, fail unless it posted everywhere."""
    with cli_errors():
        rows = wait_final([post_id], timeout=timeout or None)
    post = rows[post_id]
    assert post is not None
    click.echo(views.post_header(post))
    click.echo(render.section("Targets", views.targets_table(post)))
    if post["status"] != "posted":
        reason = render.cell(post.get("error_message"))
        raise click.ClickException(f"post {post_id} ended {post['status']}: {reason}")


@click.command("post", cls=Command, context_settings=CONTEXT)
@click.argument("content", required=False)
@click.option("--user", "user_id", required=True, metavar="UUID", help="Whose credentials.")
@click.option(
    "-p", "--platform", "platforms", multiple=True, metavar="NAME[,NAME]",
    help="Target platform; repeat or comma-separate (twitter, linkedin, instagram, ...).",
)
@click.option("--media", "media", multiple=True, metavar="URL", help="Media URL (repeatable).")
@click.option(
    "--at", "at", metavar="ISO8601",
    help="Publish at this time, with an offset (2026-06-01T09:00:00+00:00); default now.",
)
@click.option("--campaign", "campaign_id", metavar="UUID", help="Campaign the post belongs to.")
@click.option("--batch", "batch_number", type=int, metavar="N", help="Batch number within it.")
@click.option(
    "--post-id", metavar="UUID",
    help="Choose the post id: enqueueing the same id again changes nothing.",
)
@click.option(
    "--platform-options", "options_json", metavar="JSON",
    help='Per-platform options, e.g. \'{"youtube": {"title": "Launch"}}\'.',
)
@click.option("--account", "accounts", multiple=True, metavar="PLATFORM=ID", help=ACCOUNT_HELP)
@overrides_options
@click.option("--wait", is_flag=True, help=WAIT_HELP)
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help=TIMEOUT_HELP)
def post(
    content: str | None,
    user_id: str,
    platforms: tuple[str, ...],
    media: tuple[str, ...],
    at: str | None,
    campaign_id: str | None,
    batch_number: int | None,
    post_id: str | None,
    options_json: str | None,
    accounts: tuple[str, ...],
    override_values: tuple[str, ...],
    overrides_file: TextIO | None,
    wait: bool,
    timeout: float,
) -> None:
    """Enqueue one post of CONTENT (use - to read it from stdin) and print its id.

    The worker records the post as queued, or scheduled when --at is in the future, and
    publishes through the user's PostForMe, the user's LATE, then the global keys.

    \b
    Examples:
      socialpost post --user $U -p twitter,linkedin "We are live!"
      socialpost post --user $U -p instagram --media https://cdn.example/a.jpg - < caption.txt
      socialpost post --user $U -p bluesky --at 2026-06-01T09:00:00+02:00 "Tomorrow"
      socialpost post --user $U -p linkedin --account linkedin=spc_123 "From the brand page"
      socialpost post --user $U -p twitter,linkedin,youtube --media https://cdn.example/v.mp4 \\
        --override linkedin.content="The longer story ..." --override youtube.title=Launch \\
        --override twitter.thread='["More in the thread", "And the end"]' "We are live!"
    """
    text = read_text_argument(content, "content")
    names = platforms_option(platforms, strict=False)
    options = _options_json(options_json)
    account_ids = _accounts_option(accounts)
    overrides = read_overrides(override_values, overrides_file)
    with cli_errors():
        pid = producer().enqueue_post(
            user_id,
            text,
            names,
            media_urls=list(media) or None,
            scheduled_for=at,
            campaign_id=campaign_id,
            batch_number=batch_number,
            post_id=post_id,
            platform_options=options,
            account_ids=account_ids,
            overrides=overrides,
        )
    note(f"enqueued post {pid} for {', '.join(names)} {_when_text(at)}")
    click.echo(pid)
    if wait:
        finish_waiting(pid, timeout)


@click.command("batch", cls=Command, context_settings=CONTEXT)
@click.option("--user", "user_id", required=True, metavar="UUID", help="Whose credentials.")
@click.option("--campaign", "campaign_id", required=True, metavar="UUID", help="The campaign.")
@click.option("--batch", "batch_number", required=True, type=int, metavar="N",
              help="Batch number in the campaign's calendar (from 1).")
@click.option("-p", "--platform", "platforms", multiple=True, metavar="NAME[,NAME]",
              help="Target platform; repeat or comma-separate.")
@click.option("--media", "media", multiple=True, metavar="URL",
              help="Media URL (repeatable); default: the batch's own media.")
@click.option("--at", "at", metavar="ISO8601", help="Publish at this time; default now.")
@click.option("--post-id", metavar="UUID", help="Choose the post id (idempotent re-sends).")
@click.option("--wait", is_flag=True, help=WAIT_HELP)
@click.option("--timeout", type=click.FloatRange(min=0), default=300, show_default=True,
              help=TIMEOUT_HELP)
def batch(
    user_id: str,
    campaign_id: str,
    batch_number: int,
    platforms: tuple[str, ...],
    media: tuple[str, ...],
    at: str | None,
    post_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Enqueue one batch of a campaign's calendar as a post and print its id.

    The worker reads the caption (and media, unless --media is given) from the calendar,
    so a caption fixed in the calendar before the batch runs is the one published.
    """
    names = platforms_option(platforms, strict=False)
    with cli_errors():
        pid = producer().enqueue_batch(
            user_id,
            campaign_id,
            batch_number,
            names,
            media_urls=list(media) or None,
            scheduled_for=at,
            post_id=post_id,
        )
    note(f"enqueued batch {batch_number} of campaign {campaign_id} as post {pid} "
         f"for {', '.join(names)} {_when_text(at)}")
    click.echo(pid)
    if wait:
        finish_waiting(pid, timeout)


@click.command("cancel", cls=Command, context_settings=CONTEXT)
@click.argument("post_id")
def cancel(post_id: str) -> None:
    """Cancel a scheduled or queued post before it is sent.

    A post already publishing (or finished) cannot be taken back: that is reported, with
    its status, and the exit code is 1.
    """
    from db import posts

    with cli_errors(), db_connection() as conn:
        done = posts.cancel_post(conn, post_id)
        row = None if done else posts.get_post(conn, post_id)
    if done:
        click.echo(f"cancelled post {post_id}")
        return
    if row is None:
        raise click.ClickException(
            f"no post {post_id} in the ledger (if it was just enqueued, no worker has "
            "accepted it yet: try again in a moment)"
        )
    if row["status"] == "cancelled":  # the wanted state already holds: not a failure
        click.echo(f"post {post_id} was already cancelled")
        return
    raise click.ClickException(
        f"too late to cancel post {post_id}: {posts.cancel_refusal(row)}"
    )

