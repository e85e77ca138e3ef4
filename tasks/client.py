"""The producer client: enqueue posts, batches and whole campaigns; cancel posts.

It validates before sending, so bad input fails here with an InvalidRequest (a
ValueError naming each field) instead of becoming a failed post later. It sends by
task name, so a producer only needs the broker URL; the acceptance (queued, scheduled
or failed) is recorded by the worker in PostgreSQL.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from celery import Celery

from providers.platforms import normalize_platforms
from tasks import inflight
from tasks.validation import (
    InvalidRequest,
    PostIdConflict,
    PublishInput,
    check_publish_input,
    parse_uuid,
)

log = logging.getLogger("socialpost.client")


def _default_app() -> Celery:
    from worker.celery_app import app

    return app


def _iso(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


SUMMARY_TEXT = 80  # characters of a post's text shown in Flower and task events


def kwargs_summary(kwargs: dict[str, Any]) -> str:
    """What Flower and the task events show of a publish message's arguments: the fields
    that are set, the text cut short. Celery's own saferepr of every field cost about a
    fifth of a message's send; the message itself carries the arguments whole."""
    shown = {k: v for k, v in kwargs.items() if v is not None}
    text = shown.get("content")
    if isinstance(text, str) and len(text) > SUMMARY_TEXT:
        shown["content"] = text[:SUMMARY_TEXT] + "…"
    return repr(shown)


class PublishClient:
    """Thin producer. `app` defaults to ours; any Celery app on the same broker works.

    With database access (`record_first`, the default), a post's row is written here,
    before its message is sent: if Redis then loses the message, the post is still in
    PostgreSQL, queued, and the recovery sweep delivers it. A bare `send_task` producer
    (no database) keeps working: the worker's intake writes the row instead."""

    def __init__(self, app: Celery | None = None, *, record_first: bool = True) -> None:
        self.app = app or _default_app()
        self.record_first = record_first

    def _record(self, checked: PublishInput, post_id: str) -> str:
        """Write the post's row (a repeat of the same request changes nothing) and return
        its status; a different request under this id is refused, naming post_id."""
        from db import posts
        from db.pool import connection
        from tasks.intake import new_post

        new = new_post(checked, post_id)
        with connection() as conn:
            row, created = posts.insert_post(conn, new)
        differs = [] if created else posts.request_differences(row, new)
        if differs:
            raise PostIdConflict([
                f"post_id: {post_id} is already used by a different request "
                f"({', '.join(differs)} differ); use a new post_id"])
        return str(row["status"])

    def _check_route(self, checked: PublishInput) -> None:
        """A thread or first comment needs a LATE key in the user's chain (tasks.routing)."""
        from tasks.routing import refuse_unroutable

        refuse_unroutable(str(checked.user_id), checked.overrides)

    def enqueue_post(
        self,
        user_id: str,
        content: str,
        platforms: Sequence[str],
        media_urls: Sequence[str] | None = None,
        scheduled_for: datetime | str | None = None,
        campaign_id: str | None = None,
        batch_number: int | None = None,
        post_id: str | None = None,
        platform_options: dict[str, dict[str, Any]] | None = None,
        account_ids: dict[str, str] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        notify_task: str | None = None,
        notify_queue: str | None = None,
    ) -> str:
        """Validate, send `social.publish_post`, return the post id (chosen here if absent).
        `notify_task` (a Celery task name on this broker; `notify_queue` optional) is sent
        the post's final event, at least once (receivers dedupe on the event id).
        `account_ids` (platform -> provider account id) picks among the accounts the user
        may use; one the user may not use fails that target at send time. `overrides`
        gives a platform its own content, media and options (README: per-platform content)."""
        return self.submit_post(
            user_id=user_id, content=content,
            platforms=list(platforms) if isinstance(platforms, list | tuple) else platforms,
            media_urls=list(media_urls) if isinstance(media_urls, list | tuple) else media_urls,
            scheduled_for=scheduled_for, campaign_id=campaign_id, batch_number=batch_number,
            post_id=post_id, platform_options=platform_options, account_ids=account_ids,
            overrides=overrides, notify_task=notify_task, notify_queue=notify_queue,
        )["post_id"]

    def submit_post(self, **fields: Any) -> dict[str, str]:
        """`enqueue_post` with the request's fields as given (check_publish_input's
        keywords), answering the acceptance {post_id, status}: the stored row's status
        (queued or scheduled; for a repeat, wherever the post has got to). The HTTP API
        answers with it."""
        checked = check_publish_input(**fields)
        pid = str(checked.post_id or uuid.uuid4())
        status = "queued" if checked.due_now() else "scheduled"
        if self.record_first:
            self._check_route(checked)
            status = self._record(checked, pid)
        kwargs = {
            "user_id": str(checked.user_id),
            "content": checked.content,
            "platforms": list(checked.platforms),
            "media_urls": list(checked.media_urls) or None,
            "scheduled_for": _iso(checked.scheduled_for),
            "campaign_id": str(checked.campaign_id) if checked.campaign_id else None,
            "batch_number": checked.batch_number,
            "post_id": pid,
            "platform_options": checked.platform_options or None,
            "account_ids": checked.account_ids or None,
            "overrides": checked.overrides or None,
            "notify_task": checked.notify_task,
            "notify_queue": checked.notify_queue,
        }
        self._send("social.publish_post", kwargs, pid)
        return {"post_id": pid, "status": status}

    def _send(self, task_name: str, kwargs: dict[str, Any], pid: str) -> None:
        """Send the message of post `pid`, marked in flight when its row was written here.
        When the row is written, a failed send is only logged: the recovery sweep (or
        beat's release) delivers the post once the broker is back; raising would invite
        a resend under a new id."""
        task_id = str(uuid.uuid4())
        header = self._mark_in_flight(pid, task_id, task_name)
        try:
            # The id is the handle; nobody waits on the acceptance, so no result
            # subscription per message (nor a stall when the result store is away).
            self.app.send_task(task_name, ignore_result=True, kwargs=kwargs, task_id=task_id,
                               headers={inflight.HEADER: header} if header else None,
                               kwargsrepr=kwargs_summary(kwargs))
        except Exception as exc:
            if header:
                inflight.unmark([(pid, task_id)])
            if not self.record_first:
                raise
            log.warning("post %s recorded; its message was not sent (%s): the recovery "
                        "sweep delivers it", pid, exc)

    def _mark_in_flight(self, post_id: str, task_id: str, task_name: str) -> str | None:
        """The recorded row's message is in flight (tasks.inflight): while it waits in the
        queue behind a backlog, the recovery sweep does not send the post again. Only when
        the row is written here (`record_first`); best effort (unmarked, at worst one
        extra delivery message)."""
        if not self.record_first:
            return None
        try:
            queue = self.app.amqp.router.route({}, task_name, (), {})["queue"].name
            return inflight.mark([(post_id, task_id, queue, 0.0)])[0]
        except Exception as exc:
            log.warning("post %s: sent without an in-flight marker (%s)", post_id,
                        type(exc).__name__)
            return None

    def enqueue_batch(
        self,
        user_id: str,
        campaign_id: str,
        batch_number: int,
        platforms: Sequence[str],
        media_urls: Sequence[str] | None = None,
        scheduled_for: datetime | str | None = None,
        post_id: str | None = None,
        account_ids: dict[str, str] | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        notify_task: str | None = None,
        notify_queue: str | None = None,
    ) -> str:
        """Send `social.publish_batch`; the worker reads the caption from the calendar
        (and the batch's own `overrides`, unless these are given). `notify_task` /
        `notify_queue` as for `enqueue_post`."""
        problems: list[str] = []
        uid = parse_uuid("user_id", user_id, problems, required=True)
        cid = parse_uuid("campaign_id", campaign_id, problems, required=True)
        pid = parse_uuid("post_id", post_id, problems, required=False)
        if isinstance(batch_number, bool) or not isinstance(batch_number, int) or batch_number < 1:
            problems.append(f"batch_number: must be an integer >= 1, got {batch_number!r}")
        # Platform, media and time rules are checked with a stand-in caption; the real
        # caption's length is checked by the worker once it has read the calendar.
        accounts: dict[str, str] = {}
        try:
            accounts = check_publish_input(
                user_id=user_id,
                content="x",
                platforms=list(platforms),
                media_urls=list(media_urls) if media_urls is not None else None,
                scheduled_for=scheduled_for,
                account_ids=account_ids,
                overrides=overrides,
                notify_task=notify_task,
                notify_queue=notify_queue,
            ).account_ids
        except InvalidRequest as exc:
            # Without overrides here, the calendar's apply: the worker checks them.
            skip = ("user_id", "content") + (() if overrides is not None else ("overrides",))
            problems.extend(p for p in exc.problems if not p.startswith(skip))
        if problems or uid is None or cid is None:
            raise InvalidRequest(problems)
        final_id = str(pid or uuid.uuid4())
        kwargs = {
            "user_id": str(uid),
            "campaign_id": str(cid),
            "batch_number": batch_number,
            "platforms": normalize_platforms(platforms),
            "media_urls": list(media_urls) if media_urls is not None else None,
            "scheduled_for": _iso(scheduled_for),
            "post_id": final_id,
            "account_ids": accounts or None,
            "overrides": overrides,
            "notify_task": notify_task,
            "notify_queue": notify_queue,
        }
        if self.record_first and not self._record_batch(kwargs, final_id):
            # Not recorded here (the worker records the refusal, with its reason, as for
            # any producer): send unmarked, as a bare producer would.
            self.app.send_task("social.publish_batch", ignore_result=True, kwargs=kwargs)
            return final_id
        self._send("social.publish_batch", kwargs, final_id)
        return final_id

    def _record_batch(self, kwargs: dict[str, Any], post_id: str) -> bool:
        """Write the batch's row before its message, as for a post (the caption, media and
        time read from the calendar, exactly as the worker's intake reads them). False
        when the batch would be refused (an unreadable batch, a caption a platform
        refuses): the worker then records the refusal as a failed post, as before."""
        from tasks.intake import BatchRefused, batch_request

        try:
            checked = check_publish_input(**batch_request(kwargs, post_id))
            self._check_route(checked)
        except (BatchRefused, InvalidRequest):
            return False
        self._record(checked, post_id)
        return True

    def enqueue_campaign(
        self, campaign_id: str, platforms: Sequence[str], *, skip_past: bool = True
    ) -> list[dict[str, Any]]:
        """Publish every batch of the campaign's calendar, each at its own time: the
        calendar is read once, every batch's post recorded in one transaction, and only
        the batches due now sent to a worker (beat releases the others at their time).

        Returns one row per batch: {batch_number, post_id, scheduled_for, sent[, error]}
        (`error`: the batch was refused and recorded as a failed post, e.g. a caption too
        long for a platform). Batches whose time passed more than max_past()
        (SOCIALPOST_MAX_PAST_SECONDS) ago are skipped (`sent` False) unless skip_past is
        False: then they publish now. Needs database access (it reads the calendar)."""
        from tasks import campaign_publish

        problems: list[str] = []
        cid = parse_uuid("campaign_id", campaign_id, problems, required=True)
        if cid is None:
            raise InvalidRequest(problems)
        return campaign_publish.enqueue_campaign(self.app, cid, platforms, skip_past=skip_past)

    def cancel(self, post_id: str) -> bool:
        """Cancel a scheduled or queued post; False if it already left or ended."""
        from db import posts
        from db.pool import connection

        problems: list[str] = []
        pid = parse_uuid("post_id", post_id, problems, required=True)
        if pid is None:
            raise InvalidRequest(problems)
        with connection() as conn:
            return bool(posts.cancel_post(conn, pid))


_default: PublishClient | None = None


def _client() -> PublishClient:
    global _default
    if _default is None:
        _default = PublishClient()
    return _default


def enqueue_post(*args: Any, **kwargs: Any) -> str:
    return _client().enqueue_post(*args, **kwargs)


def enqueue_batch(*args: Any, **kwargs: Any) -> str:
    return _client().enqueue_batch(*args, **kwargs)


def enqueue_campaign(
    campaign_id: str, platforms: Sequence[str], **kwargs: Any
) -> list[dict[str, Any]]:
    return _client().enqueue_campaign(campaign_id, platforms, **kwargs)


def cancel(post_id: str) -> bool:
    return _client().cancel(post_id)
