"""`socialpost dead-letters`: requests that intake could not take, parked, and replayed.

A publish request whose task failed on something other than a database outage (those
retry without end) is parked, same task id and arguments, in the `social.dead_letter`
queue, which no worker consumes (tasks.base.IntakeTask). Nothing is lost: once the cause
is mended, `replay` sends each one back to its task, which accepts it as any repeat.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from worker.commands.common import CONTEXT, Command, Group, cli_errors, note


def _messages(handle: Callable[[Any, dict[str, Any], dict[str, Any]], bool], limit: int) -> int:
    """Call handle(message, headers, kwargs) for up to `limit` parked messages; a message
    whose handle returns True is removed, else it goes back. Returns how many were seen."""
    from queue import Empty

    from tasks.base import DEAD_LETTER_QUEUE
    from worker.commands.publish import producer

    app = producer().app
    seen = 0
    with app.connection_for_write() as conn, conn.SimpleQueue(DEAD_LETTER_QUEUE) as queue:
        held = []
        while seen < limit:
            try:
                message = queue.get(block=False)
            except Empty:
                break
            seen += 1
            body = message.decode()
            kwargs = body[1] if isinstance(body, list | tuple) and len(body) > 1 else {}
            if handle(message, dict(message.headers or {}), kwargs or {}):
                message.ack()
            else:
                held.append(message)
        for message in held:
            message.requeue()
    return seen


@click.group("dead-letters", cls=Group, context_settings=CONTEXT)
def dead_letters() -> None:
    """Publish requests parked because intake failed on them (not a database outage:
    those retry without end). See why in the worker's log, mend it, then replay."""


@dead_letters.command("list", cls=Command)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def list_parked(limit: int) -> None:
    """One line per parked request: task, task id, post id, user id."""

    def show(_message: Any, headers: dict[str, Any], kwargs: dict[str, Any]) -> bool:
        click.echo(f"{headers.get('task')}\t{headers.get('id')}\t"
                   f"post {kwargs.get('post_id') or '-'}\tuser {kwargs.get('user_id') or '-'}")
        return False

    with cli_errors():
        seen = _messages(show, limit)
    note(f"{seen} parked request(s)")


@dead_letters.command("replay", cls=Command)
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def replay(limit: int) -> None:
    """Send each parked request back to its task, under its own task id (a request
    already accepted meanwhile is recognised as a repeat and changes nothing)."""
    from worker.commands.publish import producer

    app = producer().app

    def resend(_message: Any, headers: dict[str, Any], kwargs: dict[str, Any]) -> bool:
        app.send_task(str(headers["task"]), kwargs=kwargs, task_id=headers.get("id"),
                      ignore_result=True)
        return True

    with cli_errors():
        seen = _messages(resend, limit)
    note(f"replayed {seen} request(s)")
