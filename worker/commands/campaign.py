"""`socialpost campaign create|show|publish`: creative calendars from a shell.

A calendar is checked batch by batch when it is created (in the same transaction), so a
missing caption or a naive time is refused then, not discovered when the batch is due.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any, TextIO

import click

from worker.commands import render, views
from worker.commands.common import (
    CONTEXT,
    BadInput,
    Command,
    Group,
    cli_errors,
    db_connection,
    note,
    platforms_option,
)
from worker.commands.follow import count_final, wait_final


@click.group("campaign", cls=Group, context_settings=CONTEXT)
def campaign() -> None:
    """Create, inspect and publish campaigns (creative calendars of batches)."""


def _read_calendar(stream: TextIO) -> dict[str, Any]:
    try:
        value = json.load(stream)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"--calendar: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if isinstance(value, list):  # a bare list of batches is accepted too
        value = {"batches": value}
    if not isinstance(value, dict):
        raise BadInput('--calendar: must be a JSON object {"batches": [...]} or a list')
    return value


@campaign.command("create", cls=Command, context_settings=CONTEXT,
                  short_help="Store a campaign and its calendar; print its id.")
@click.option("--user", "user_id", required=True, type=click.UUID, help="The owner.")
@click.option("--name", required=True, help="A name people recognise.")
@click.option(
    "--calendar", "calendar_file", required=True, type=click.File("r", encoding="utf-8"),
    help='JSON file (- for stdin): {"batches": [{"caption", "media_urls", "scheduled_for", '
         '"overrides"}]}.',
)
@click.option("--id", "campaign_id", type=click.UUID, help="Choose the campaign id.")
def create(
    user_id: uuid.UUID, name: str, calendar_file: TextIO, campaign_id: uuid.UUID | None
) -> None:
    """Store a campaign and its creative calendar; print the campaign id.

    Every batch needs a caption; scheduled_for must carry an offset
    (2026-06-01T09:00:00+00:00). Batches are numbered from 1 by position unless
    they carry their own batch_number.
    """
    from tasks.campaigns import create_campaign
    from tasks.validation import InvalidRequest

    calendar = _read_calendar(calendar_file)
    with cli_errors(), db_connection() as conn:
        try:
            cid, batches = create_campaign(conn, user_id, name, calendar, campaign_id)
        except InvalidRequest as exc:  # name the options the operator gave
            raise BadInput("; ".join(_as_options(p) for p in exc.problems)) from None
    note(f"created campaign {cid} {name!r} with {len(batches)} batch(es)")
    click.echo(cid)


def _as_options(problem: str) -> str:
    """"creative_calendar: batch 2: ..." -> "--calendar: batch 2: ..."."""
    options = {"creative_calendar": "--calendar", "name": "--name", "user_id": "--user",
               "campaign_id": "--id"}
    name, sep, rest = problem.partition(":")
    return f"{options.get(name, name)}{sep}{rest}"


def _load(conn: Any, campaign_id: uuid.UUID) -> dict[str, Any]:
    from db import campaigns

    row = campaigns.get_campaign(conn, campaign_id)
    if row is None:
        raise click.ClickException(f"no campaign {campaign_id}")
    return row


@campaign.command("show", cls=Command, context_settings=CONTEXT,
                  short_help="Its batches and the posts made from them.")
@click.argument("campaign_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True,
              help="Print {campaign, batches, posts} as JSON.")
def show(campaign_id: uuid.UUID, as_json: bool) -> None:
    """A campaign's batches (time, media, caption) and the posts made from them."""
    from db import campaigns
    from tasks.campaigns import campaign_posts

    with cli_errors(), db_connection() as conn:
        row = _load(conn, campaign_id)
        batches = campaigns.list_batches(conn, campaign_id)
        made = campaign_posts(conn, row)
    if as_json:
        render.echo_json({"campaign": row, "batches": batches, "posts": made})
        return
    click.echo(render.fields([
        ("campaign", row["id"]), ("name", row["name"]), ("user", row["user_id"]),
        ("created", row["created_at"]), ("batches", len(batches)), ("posts", len(made)),
    ]))
    table = render.table(
        ("batch", "scheduled for", "media", "caption"),
        [(b.batch_number, b.scheduled_for, len(b.media_urls), b.caption) for b in batches],
        {"caption": 70},
    )
    click.echo(render.section("Batches", table if batches else "(no batches)"))
    if made:
        made.sort(key=lambda p: (p.get("batch_number") or 0, p["created_at"]))
        click.echo(render.section("Posts", _posts_table(made)))


def _posts_table(made: list[dict[str, Any]]) -> str:
    return render.table(
        ("batch", "post id", "status", "targets", "error"),
        [(p.get("batch_number"), p["id"], p["status"], views.outcomes(p), p.get("error_message"))
         for p in made],
        {"targets": 70, "error": 60},
    )


@campaign.command("publish", cls=Command, context_settings=CONTEXT,
                  short_help="Enqueue every batch, then follow them to the end.")
@click.argument("campaign_id", type=click.UUID)
@click.option("-p", "--platform", "platforms", multiple=True, required=True,
              metavar="NAME[,NAME]", help="Target platform; repeat or comma-separate.")
@click.option("--include-past", is_flag=True,
              help="Also send batches whose time passed more than "
                   "SOCIALPOST_MAX_PAST_SECONDS (300 s) ago; they publish now.")
@click.option("--no-wait", is_flag=True,
              help="Return once enqueued, listing the post ids, instead of following them.")
@click.option("--timeout", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Give up following after this many seconds (0 = no limit).")
def publish(
    campaign_id: uuid.UUID,
    platforms: tuple[str, ...],
    include_past: bool,
    no_wait: bool,
    timeout: float,
) -> None:
    """Enqueue every batch of the calendar, each at its own time, then follow them.

    Post ids derive from (campaign, batch, platforms), so running it again is harmless:
    nothing is published twice. Following shows a progress bar until every post is
    final (scheduled batches keep it waiting until their time; Ctrl-C stops following,
    not publishing), then a summary. Exits 1 unless every post posted everywhere.
    """
    from db.pool import close_pools
    from worker.commands.publish import producer

    names = platforms_option(platforms)
    with cli_errors():
        with db_connection() as conn:  # fails fast, with a clear line, before any send
            row = _load(conn, campaign_id)
        # enqueue_campaign reads and checks the whole calendar before it writes or sends
        # anything, so a bad batch still stops it here with nothing published.
        try:
            rows = producer().enqueue_campaign(str(campaign_id), names,
                                               skip_past=not include_past)
        finally:
            close_pools()
    sent = [r for r in rows if r["sent"]]
    skipped = len(rows) - len(sent)
    note(f"enqueued {len(sent)} post(s) for {', '.join(names)}"
         + (f"; skipped {skipped} past batch(es) (--include-past sends them)" if skipped else ""))
    if no_wait:
        click.echo(render.table(
            ("batch", "post id", "scheduled for", "sent"),
            [(r["batch_number"], r["post_id"], r["scheduled_for"],
              f"refused: {r['error']}" if r.get("error") else
              "yes" if r["sent"] else "skipped: past") for r in rows],
        ))
        return
    if not sent:
        return
    _follow(sent, (str(row["user_id"]), str(campaign_id)), timeout)


def _follow(sent: list[dict[str, Any]], owner: tuple[str, str], timeout: float) -> None:
    ids = [r["post_id"] for r in sent]
    with click.progressbar(length=len(ids), label="publishing", file=sys.stderr,
                           show_pos=True) as bar:
        done = 0

        def advance(found: dict[str, dict[str, Any] | None]) -> None:
            nonlocal done
            now = count_final(found)
            if now > done:
                bar.update(now - done)
                done = now

        with cli_errors():
            found = wait_final(ids, timeout=timeout or None, campaign=owner, on_poll=advance)
    made = [found[i] for i in ids]
    click.echo(_posts_table([p for p in made if p is not None]))
    bad = sum(1 for p in made if p is None or p["status"] != "posted")
    if bad:
        raise click.ClickException(f"{bad} of {len(ids)} post(s) did not post everywhere")
