"""The delivery engine on its own, against real PostgreSQL and the sandbox, with no worker
running (so nothing else claims the posts these tests hold): the ledger rules that only
show over several attempts."""

from __future__ import annotations

import os
import time
from typing import Any

from cryptography.fernet import Fernet

from tests.workers import conn, creates, post, user_with_key

os.environ.setdefault("ENCRYPTION_KEY", Fernet.generate_key().decode())


# -- 5: poison posts -------------------------------------------------------------------------


def test_a_post_whose_attempts_keep_crashing_ends_failed_without_a_send(
    sandbox: Any, database_url: str
) -> None:
    from db import delivery, posts
    from tasks.delivery import run_attempt

    user = user_with_key(sandbox, "postforme")
    new = posts.NewPost(user_id=user, content="crashes", platforms=["twitter"])
    with conn() as c:
        post_id = str(posts.insert_post(c, new)[0]["id"])
        for n in range(5):  # five attempts that died before recording anything
            assert delivery.claim(c, post_id, f"crashed-{n}", 0.05) is not None
            time.sleep(0.1)
    result = run_attempt(post_id, "survivor", dsn=database_url)
    assert result.status == "failed"
    row = post(post_id)
    assert row is not None and "5 attempts in a row" in row["error_message"]
    assert not creates(sandbox, "postforme", post_id)
