"""`socialpost webhooks`: endpoints that are told of post events, and their delivery log.

Deliveries are made by the workers (beat's dispatcher, `social.deliver_webhook`): these
commands only write and read PostgreSQL, so they work while the broker is away.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import click

from worker.commands import render
from worker.commands.common import CONTEXT, Command, Group, cli_errors, db_connection, note


@click.group("webhooks", cls=Group, context_settings=CONTEXT)
def webhooks() -> None:
    """Webhook endpoints told of post events (signed by the Standard Webhooks spec), and
    their delivery log. Workers and beat deliver; run them (socialpost worker / beat)."""


@webhooks.command("add", cls=Command)
@click.option("--url", required=True, help="The endpoint (http/https; public addresses "
              "only unless SOCIALPOST_ALLOW_PRIVATE_URLS=1).")
@click.option("--user", "user_id", type=click.UUID, default=None,
              help="Only this user's posts (default: every user's).")
@click.option("--events", "event_types", default=None, metavar="TYPES",
              help="Comma-separated event types or globs, e.g. 'post.posted,post.target.*' "
              "(default: every post event).")
def add(url: str, user_id: uuid.UUID | None, event_types: str | None) -> None:
    """Add an endpoint; prints its id and its signing secret (shown only this once)."""
    from db import webhooks as store

    with cli_errors(), db_connection() as conn:
        row, secret = store.create_endpoint(
            conn, url, user_id=user_id,
            event_types=event_types.split(",") if event_types is not None else None)
    click.echo(render.fields([
        ("endpoint", row["id"]), ("url", row["url"]),
        ("user", row["user_id"] or "every user"),
        ("events", row["event_types"] or "every post event"), ("secret", secret)]))
    note("keep the secret now: it is stored encrypted and never shown again "
         "(verify signatures with it, e.g. standardwebhooks.Webhook(secret).verify)")


def _state(row: dict[str, Any]) -> str:
    if row["disabled_at"] is not None:
        return f"disabled {render.when(row['disabled_at'])}: {row['disabled_reason']}"
    if row["consecutive_failures"]:
        return f"failing ({row['consecutive_failures']} in a row)"
    return "enabled"


@webhooks.command("list", cls=Command)
@click.option("--user", "user_id", type=click.UUID, default=None,
              help="Only the endpoints this user's events go to (theirs and global ones).")
def list_endpoints(user_id: uuid.UUID | None) -> None:
    """Endpoints: url, whose events, which types, state (disabled ones say why)."""
    from db import webhooks as store

    with cli_errors(), db_connection() as conn:
        rows = store.list_endpoints(conn, user_id=user_id)
    if not rows:
        note("no webhook endpoints (add one: socialpost webhooks add --url URL)")
        return
    click.echo(render.table(
        ["id", "url", "user", "events", "pending", "last success", "state"],
        [[r["id"], r["url"], r["user_id"] or "all", r["event_types"] or "post.*",
          r["pending"], r["last_success_at"], _state(r)] for r in rows],
        {"url": 50, "state": 60}))


def _missing(endpoint_id: uuid.UUID) -> click.ClickException:
    return click.ClickException(
        f"no webhook endpoint {endpoint_id} (see socialpost webhooks list)")


def _endpoint_or_fail(conn: Any, endpoint_id: uuid.UUID) -> dict[str, Any]:
    from db import webhooks as store

    row = store.get_endpoint(conn, endpoint_id)
    if row is None:
        raise _missing(endpoint_id)
    return row


def _change(endpoint_id: uuid.UUID, change: Callable[[Any, uuid.UUID], bool],
            done: str) -> None:
    """Apply `change` (a db.webhooks function, False: no such endpoint) and say `done`."""
    with cli_errors(), db_connection() as conn:
        if not change(conn, endpoint_id):
            raise _missing(endpoint_id)
    note(done)


@webhooks.command("remove", cls=Command)
@click.argument("endpoint_id", type=click.UUID)
def remove(endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint, its pending deliveries and its log."""
    from db import webhooks as store

    _change(endpoint_id, store.remove_endpoint, f"removed endpoint {endpoint_id}")


@webhooks.command("enable", cls=Command)
@click.argument("endpoint_id", type=click.UUID)
def enable(endpoint_id: uuid.UUID) -> None:
    """Enable a disabled endpoint again: its pending deliveries resume."""
    from db import webhooks as store

    _change(endpoint_id, store.enable_endpoint, f"endpoint {endpoint_id} enabled")


@webhooks.command("test", cls=Command)
@click.argument("endpoint_id", type=click.UUID)
def test(endpoint_id: uuid.UUID) -> None:
    """Send a `ping` event to an endpoint (beat's next pass); prints the event id."""
    from db import events

    with cli_errors(), db_connection() as conn:
        row = _endpoint_or_fail(conn, endpoint_id)
        event_id = events.insert_ping(conn, endpoint_id)
    click.echo(event_id)
    if row["disabled_at"] is not None:
        note("the endpoint is disabled: the ping waits until `socialpost webhooks enable`")
    note(f"see it arrive: socialpost webhooks deliveries --endpoint {endpoint_id}")


@webhooks.command("deliveries", cls=Command)
@click.option("--endpoint", "endpoint_id", type=click.UUID, default=None,
              help="Only this endpoint's attempts.")
@click.option("--failed", "failed_only", is_flag=True, help="Only failed attempts.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def deliveries(endpoint_id: uuid.UUID | None, failed_only: bool, limit: int,
               as_json: bool) -> None:
    """The delivery log, newest first: one row per attempt."""
    from db import webhooks as store

    with cli_errors(), db_connection() as conn:
        rows = store.list_deliveries(conn, endpoint_id=endpoint_id, failed_only=failed_only,
                                     limit=limit)
    if as_json:
        render.echo_json(rows)
        return
    if not rows:
        note("no delivery attempts")
        return
    click.echo(render.table(
        ["at", "event", "type", "endpoint", "try", "http", "ms", "now", "answer"],
        [[r["created_at"], r["event_id"], r["type"], r["endpoint_id"], r["attempt"],
          r["http_status"] or ("ok" if r["ok"] else "none"), r["latency_ms"],
          r["delivery_status"], r["response"]] for r in rows],
        {"answer": 60}))


@webhooks.command("redeliver", cls=Command)
@click.argument("event_id", type=click.UUID)
@click.option("--endpoint", "endpoint_id", type=click.UUID, default=None,
              help="Only to this endpoint (delivered there even if it never was).")
def redeliver(event_id: uuid.UUID, endpoint_id: uuid.UUID | None) -> None:
    """Deliver an event again, now, with the same webhook-id (receivers dedupe on it)."""
    from db import events, webhook_deliveries

    with cli_errors(), db_connection() as conn:
        if events.get_event(conn, event_id) is None:
            raise click.ClickException(
                f"no event {event_id} (pruned, or a mistyped id: see socialpost show "
                "POST_ID --json)")
        if endpoint_id is not None:
            _endpoint_or_fail(conn, endpoint_id)
        n = webhook_deliveries.redeliver(conn, event_id, endpoint_id)
    if n == 0:
        raise click.ClickException(
            f"event {event_id} was never delivered anywhere: name an endpoint (--endpoint ID)")
    note(f"{n} delivery(ies) due now")
