"""`socialpost history` and `socialpost show`: read the ledger, newest first.

Read straight from PostgreSQL (db.posts), so they work with no broker and no worker.
"""

from __future__ import annotations

import uuid

import click

from db.states import STATUSES
from worker.commands import render, views
from worker.commands.common import CONTEXT, Command, cli_errors, db_connection, note


@click.command("history", cls=Command, context_settings=CONTEXT)
@click.option("--user", "user_id", required=True, type=click.UUID, help="Whose posts.")
@click.option("--status", type=click.Choice(STATUSES), help="Only posts in this status.")
@click.option("--campaign", "campaign_id", type=click.UUID, help="Only this campaign's posts.")
@click.option("--platform", help="Only posts that target this platform.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Posts per page.")
@click.option("--before", metavar="CURSOR",
              help="Continue after a previous page (the cursor it printed).")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: {posts: [...with targets and attempts], next: CURSOR|null}.")
def history(
    user_id: uuid.UUID,
    status: str | None,
    campaign_id: uuid.UUID | None,
    platform: str | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """A user's posts, newest first, with each platform's outcome.

    A full page ends with the cursor of the next one (--before), which stays valid
    while new posts arrive.
    """
    from db import posts
    from providers.platforms import normalize_platform

    name = None
    if platform is not None:
        name = normalize_platform(platform)
        if name is None:
            raise click.BadParameter(f"unknown platform {platform!r}", param_hint="--platform")
    with cli_errors(), db_connection() as conn:
        rows = posts.get_post_history(
            conn, user_id, limit=limit, status=status, campaign_id=campaign_id,
            platform=name, before=before,
        )
    following = rows[-1]["cursor"] if len(rows) == limit else None
    if as_json:
        render.echo_json({"posts": rows, "next": following})
        return
    if not rows:
        click.echo("no posts")
        return
    click.echo(views.history_table(rows))
    if following:
        note(f"more: --before '{following}'")


@click.command("show", cls=Command, context_settings=CONTEXT)
@click.argument("post_id", type=click.UUID)
@click.option("--json", "as_json", is_flag=True,
              help="Print the post, its targets, attempts and events as JSON (the "
                   "document webhooks carry as `data`).")
def show(post_id: uuid.UUID, as_json: bool) -> None:
    """One post: its status, each platform's target and every provider attempt."""
    from db import posts

    with cli_errors(), db_connection() as conn:
        row = posts.get_post(conn, post_id)
    if row is None:
        raise click.ClickException(
            f"no post {post_id} in the ledger (a just-enqueued post appears once a worker "
            "accepts it)"
        )
    if as_json:
        from db.post_view import post_document

        render.echo_json(post_document(row))
        return
    click.echo(views.show_post(row))
