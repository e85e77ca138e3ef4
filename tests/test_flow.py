"""Flow control with real workers against a sandbox that enforces the real limits.

- 100 posts on one PostForMe key limited to 5/second;20/minute, two worker processes:
  every post published once through that key, at most 2 answers 429, no minute window
  at the sandbox over its limit, and the waits in the attempt log.
- A post over its account's cap is held (`scheduled`, with the reason), not sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack, wait_for
from tests.workers import FINAL, conn, creates, start_stack, user_with_key

LIMITS = "5/second;20/minute"
POSTS = 100
# 100 creates at 20 a minute take five minutes: the one long test of the suite.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str,
          sandbox_server: Any) -> Iterator[Stack]:
    env = {
        "POSTFORME_RATE_LIMITS": LIMITS,
        "SOCIALPOST_ACCOUNT_CAPS": "none",
        # An account list is a call through the key too: cached, as in production (60 s
        # by default), not asked before every attempt as the other worker tests do.
        "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "300",
        "POSTFORME_API_KEY": "",
        "LATE_API_KEY": "",
    }
    with start_stack(tmp_path_factory, database_url, redis_url, env, concurrency=2) as s:
        s.worker(concurrency=2)  # a second worker process: the budget is the fleet's
        yield s


@pytest.fixture
def limited(sandbox: Any) -> Iterator[Any]:
    sandbox.set_rate_limits("postforme", LIMITS)
    try:
        yield sandbox
    finally:
        sandbox.set_rate_limits("postforme", None)


def _statuses(ids: list[str]) -> dict[str, str]:
    with conn() as c:
        rows = c.execute("SELECT id::text, status FROM social_posts WHERE id::text = ANY(%s)",
                         (ids,)).fetchall()
    return {r["id"]: r["status"] for r in rows}


def test_one_key_paced_across_two_workers_within_its_limits(stack: Stack, limited: Any,
                                                            ) -> None:
    from tasks.client import PublishClient

    user = user_with_key(limited, "postforme", ["twitter"])
    key = _user_key(limited, user)
    producer = PublishClient()
    start = time.monotonic()
    ids = [producer.enqueue_post(user, f"paced post {i}", ["twitter"]) for i in range(POSTS)]
    wait_for(lambda: all(s in FINAL for s in _statuses(ids).values()) or None,
             480, "every paced post final")
    took = time.monotonic() - start
    statuses = _statuses(ids)
    assert set(statuses.values()) == {"posted"}, statuses

    arrivals = limited.arrivals("postforme", api_key=key)
    limited_answers = [a for a in arrivals if a.status == 429]
    assert len(limited_answers) <= 2
    counted = sorted(a.time for a in arrivals if a.status != 429)
    # no sliding minute at the sandbox ever held more than the limit (the sandbox forgives
    # 0.1 s of arrival jitter, so a window is 59.9 s here)
    for i, t in enumerate(counted):
        within = [u for u in counted[i:] if u < t + 59.9]
        assert len(within) <= 20
    for post_id in ids:
        made = creates(limited, "postforme", post_id)
        assert len(made) == 1, (post_id, made)
    with conn() as c:
        waits = c.execute("""SELECT count(DISTINCT post_id) AS n FROM post_attempts
                             WHERE post_id::text = ANY(%s) AND outcome = 'paced'""",
                          (ids,)).fetchone()["n"]
        late = c.execute("""SELECT count(*) AS n FROM post_attempts
                            WHERE post_id::text = ANY(%s) AND provider = 'late'""",
                         (ids,)).fetchone()["n"]
    assert waits >= POSTS - 25 and late == 0
    # 100 creates at 20 a minute, the first 20 at once: four more minutes at the least
    assert took > 200


def _user_key(sandbox: Any, user: str) -> str:
    from db import credentials
    from db.vault import Vault

    with conn() as c:
        cred = credentials.get_credentials(c, Vault.from_env(), user, "postforme")
    assert cred is not None
    return cred.api_key
