"""The seed's synchronous `create_post` behind the facade: validate, store, then run the
workers' own engine in this process (tasks.in_process) until the post is final or the
wait (SOCIALPOST_SYNC_MAX_WAIT) runs out.

    due now        -> stored claimed (like intake) -> attempts -> PostResult from the row
    scheduled      -> stored `scheduled` in PostgreSQL -> beat and a worker publish it
    database down  -> the engine on an in-memory claim, global keys only, and only to
                      accounts the provider ties to the user (PostForMe external_id, the
                      LATE profile named by the user id): no shared ones (logged)
    user id not a UUID -> refused, naming user_id (the seed's schema makes it a UUID; a
                      post for no user could only go to accounts that are no one's)
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any, TypeVar

import psycopg

import settings
from db import posts
from db.errors import DbError, InvalidInput
from db.pool import connection
from providers import PostResult
from tasks import confirm, intake
from tasks.chain import build_chain
from tasks.delivery import AttemptResult, FirstAttempt, default_policy, run_attempt
from tasks.in_process import drive, run_unrecorded
from tasks.planning import NO_CREDENTIALS
from tasks.seed_support import (
    clean,
    db_error,
    lease_owner,
    log,
    memory_claim,
    read_or,
    result_from_row,
    unrecorded_result,
)
from tasks.validation import InvalidRequest, PublishInput, check_publish_input

T = TypeVar("T")


class SyncPosting:
    """One synchronous create_post against the ledger at `dsn` (None: DATABASE_URL)."""

    def __init__(self, dsn: str | None) -> None:
        self._dsn = dsn


    def create(self, raw: dict[str, Any]) -> PostResult:
        """The seed's create_post for `raw` (its arguments by name)."""
        post_id = uuid.uuid4()
        try:
            data = check_publish_input(**raw, post_id=str(post_id))
        except InvalidRequest as exc:
            self._record_refusal(raw, post_id)
            when = raw["scheduled_for"] if isinstance(raw["scheduled_for"], datetime) else None
            return PostResult(success=False, error=str(exc), scheduled_for=when)
        held: list[FirstAttempt] = []
        first = intake.HoldFirstAttempt(owner=lease_owner(), hold=held.append)
        try:
            answer = intake.store(data, post_id, lambda _id: None, self._dsn, first)
        except InvalidInput as exc:
            return PostResult(success=False, error=str(exc), scheduled_for=data.scheduled_for)
        except (DbError, psycopg.Error) as exc:
            db_error(f"post {post_id} not recorded, publishing it unrecorded", exc)
            return self._unrecorded(data, str(post_id))
        if answer["status"] == "scheduled":
            return PostResult(success=True, post_id=str(post_id), scheduled_for=data.scheduled_for)
        try:
            return self._publish(str(post_id), first.owner, held)
        except (DbError, psycopg.Error) as exc:
            message = db_error(f"post {post_id}", exc)
            # The post is held in the ledger; whoever takes it over looks it up at the
            # provider before any resend, so nothing is sent from here again.
            return PostResult(
                success=False,
                error=f"Database error while publishing post {post_id} ({message}); its "
                "outcome is kept in the ledger and reconciled once the database is back",
            )

    def _record_refusal(self, raw: dict[str, Any], post_id: uuid.UUID) -> None:
        """Refused input becomes a failed post in history, as the workers record it."""
        try:
            intake.accept({**raw, "post_id": str(post_id)}, None, lambda _id: None, self._dsn)
        except Exception as exc:
            log.error("post %s: refusal not recorded: %s", post_id, clean(exc))

    def _publish(self, post_id: str, owner: str, held: list[FirstAttempt]) -> PostResult:
        """The engine's attempts, one after another, until final or out of time."""
        policy = default_policy()
        deadline = time.monotonic() + settings.current().sync_max_wait
        attempts = iter(held)

        def attempt() -> AttemptResult:
            first = next(attempts, None)
            if first is not None:
                return first.run(owner, policy, dsn=self._dsn)
            return run_attempt(post_id, owner, policy, dsn=self._dsn)

        def status_of(pid: str) -> str | None:
            return read_or(self._dsn, "status", None, lambda c: posts.status_of(c, pid))

        results_until = time.monotonic() + settings.current().sync_results_wait
        result = drive(attempt, status_of, deadline)
        # Sent: the platforms answer later. Wait a little for them here; a provider-side
        # failure puts the post back to queued, and the engine goes on to the next step.
        while result.confirm and time.monotonic() < min(deadline, results_until):
            wait = min(deadline, results_until) - time.monotonic()
            if confirm.confirm_within(post_id, wait, lambda _id: None,
                                      dsn=self._dsn) != "queued":
                break
            result = drive(attempt, status_of, deadline)
        try:
            with connection(self._dsn) as conn:
                row = posts.get_post(conn, post_id)
        except (DbError, psycopg.Error) as exc:
            message = db_error(f"post {post_id} read back", exc)
            return PostResult(
                success=result.status in ("posted", "partial"),
                error=f"post {post_id} is {result.status}, but its record could not be read "
                f"back ({message})",
            )
        if row is None:  # deleted meanwhile
            return PostResult(success=False, error=f"post {post_id} vanished from the ledger")
        return result_from_row(row)

    def _unrecorded(self, data: PublishInput, post_id: str) -> PostResult:
        """The engine without the ledger: the user's keys are unreadable here, so only the
        global credentials are used, and on them only the accounts the provider itself
        ties to this user (never the organisation's shared ones: nothing here records
        who posted there). A future post goes to the provider's scheduler."""
        when = None if data.due_now() else data.scheduled_for
        chain = build_chain({})
        if not chain:
            return PostResult(success=False, error=NO_CREDENTIALS, scheduled_for=when)
        log.warning("post %s: database unreachable: posting on the global keys, only to "
                    "accounts the provider ties to user %s (no shared accounts)",
                    post_id, data.user_id)
        deadline = time.monotonic() + settings.current().sync_max_wait
        run = run_unrecorded(memory_claim(data, post_id), chain, default_policy(), deadline,
                             scheduled_for=when, shared_accounts=False)
        result = unrecorded_result(run, chain, when)
        if result.success:
            log.warning("post %s published by %s but not recorded", post_id, result.provider)
        return result

