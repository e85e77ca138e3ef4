"""Flow-control policy with real workers: a target that waits longer than
SOCIALPOST_RATE_LIMIT_MAX_WAIT for its step's permit falls over (nothing was created on
the paced step), and a post over its social account's cap is held, not sent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack import Stack, wait_for
from tests.workers import conn, creates, post, start_stack, user_with_key, wait_final

GLOBAL_PFM = f"global-pfm-{uuid.uuid4().hex}"
LATE_LIMITS = "2 per 60 seconds"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str,
          sandbox_server: Any) -> Iterator[Stack]:
    env = {
        "LATE_RATE_LIMITS": LATE_LIMITS,
        "SOCIALPOST_ACCOUNTS_CACHE_SECONDS": "300",
        "SOCIALPOST_RATE_LIMIT_MAX_WAIT": "3",
        "SOCIALPOST_ACCOUNT_CAPS": "twitter=2/hour",
        "POSTFORME_API_KEY": GLOBAL_PFM,
        "LATE_API_KEY": "",
    }
    with start_stack(tmp_path_factory, database_url, redis_url, env) as s:
        yield s


def _send(user: str, text: str, platform: str) -> str:
    from tasks.client import PublishClient

    return PublishClient().enqueue_post(user, text, [platform])


def test_a_target_that_waits_too_long_for_a_permit_falls_over(stack: Stack, sandbox: Any,
                                                              redis_url: str) -> None:
    from providers.pacing import Budget, Denied, Pacer

    sandbox.register_key("postforme", GLOBAL_PFM, ["linkedin", "twitter"])
    user = user_with_key(sandbox, "late", ["linkedin"])
    late_key = _late_key(user)
    # Another producer of the fleet has spent this key's minute.
    fleet = Pacer(redis_url, {"late": Budget.of(LATE_LIMITS, 0.2)})
    with pytest.raises(Denied):
        for _ in range(3):
            fleet.admit("late", late_key)
    second = _send(user, "waits, then goes to the next step", "linkedin")
    row = wait_final(second, 60)
    assert row["status"] == "posted"
    target = row["targets"][0] if isinstance(row["targets"], list) else row["targets"]
    assert "postforme" in str(target)
    outcomes = [(a["provider"], a["outcome"]) for a in row["attempts"] if a["step"] is not None]
    assert ("late", "paced") in outcomes
    assert outcomes[-1][0] == "postforme"
    errors = " ".join(a["error"] or "" for a in row["attempts"])
    assert "SOCIALPOST_RATE_LIMIT_MAX_WAIT" in errors or "in line for a LATE permit" in errors
    assert creates(sandbox, "late", second) == []  # nothing was created on the paced step


def test_a_post_over_its_accounts_cap_is_held_not_sent(stack: Stack, sandbox: Any) -> None:
    user = user_with_key(sandbox, "postforme", ["twitter"])
    ids = [_send(user, f"capped post {i}", "twitter") for i in range(3)]
    # The three race for the account's two places (the worker runs them side by side):
    # any two are posted, the other is held, whichever it is.
    found: dict[str, dict[str, Any]] = {}

    def settled() -> bool:
        for post_id in ids:
            row = post(post_id)
            if row and (row["status"] == "posted" or (
                    row["status"] == "scheduled"
                    and any(a["outcome"] == "held" for a in row["attempts"]))):
                found[post_id] = row
        return len(found) == 3

    wait_for(settled, 90, "two posts posted and one held")
    (held_id,) = [i for i in ids if found[i]["status"] == "scheduled"]
    assert sorted(found[i]["status"] for i in ids) == ["posted", "posted", "scheduled"]
    reasons = [a["error"] for a in found[held_id]["attempts"] if a["outcome"] == "held"]
    assert reasons and "at its cap of 2 posts per hour" in reasons[0]
    with conn() as c:
        due = c.execute("""SELECT extract(epoch FROM next_attempt_at - now()) AS s
                           FROM social_posts WHERE id = %s""", (held_id,)).fetchone()["s"]
    assert 3000 < float(due) <= 3600
    assert creates(sandbox, "postforme", held_id) == []


def _late_key(user: str) -> str:
    from db import credentials
    from db.vault import Vault

    with conn() as c:
        cred = credentials.get_credentials(c, Vault.from_env(), user, "late")
    assert cred is not None
    return cred.api_key
