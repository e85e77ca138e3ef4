"""Post history: newest first, keyset pages, filters, targets and attempts attached."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from db import posts
from db.errors import InvalidInput
from db.posts import NewPost
from tests import ledger


def _conn(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def _seed_history(conn: psycopg.Connection[dict[str, Any]], user: uuid.UUID,
                  campaign: uuid.UUID) -> list[uuid.UUID]:
    """Nine posts, oldest first; created_at spread over nine hours (and two tied)."""
    ids = []
    for i in range(9):
        platforms = ["twitter", "linkedin"] if i % 2 else ["bluesky"]
        row, _ = posts.insert_post(conn, NewPost(
            user_id=user, content=f"post {i}", platforms=platforms,
            campaign_id=campaign if i < 4 else None, batch_number=i + 1 if i < 4 else None))
        ids.append(row["id"])
        hours = 9 - i if i != 8 else 9 - 7  # posts 7 and 8 share a created_at
        conn.execute("UPDATE social_posts SET created_at = now() - make_interval(hours => %s)"
                     " WHERE id = %s", (hours, row["id"]))
    # post 1 is published on twitter and fails on linkedin
    held = ledger.claim(conn, ids[1], "w")
    assert ledger.requeue(conn, held, "w", step=1, attempt=ledger.attempt_row(
        ["twitter", "linkedin"], outcome="transient", http_status=503, provider_post_id=None))
    held = ledger.claim(conn, ids[1], "w")
    assert ledger.finish(conn, held, "w", [
        ledger.posted("twitter", "late", provider_post_id="l1", platform_post_id="t1",
                      platform_post_url="https://x/t1"),
        ledger.failed("linkedin", "HTTP 400", provider="late", credential_source="user"),
    ], ledger.attempt_row(["twitter", "linkedin"], "late", step=1, http_status=200,
                          provider_post_id="l1"))
    posts.cancel_post(conn, ids[2])
    return ids


def test_history_pages_filters_and_details(database_url: str) -> None:
    user, campaign = uuid.uuid4(), uuid.uuid4()
    with _conn(database_url) as conn:
        ids = _seed_history(conn, user, campaign)
        posts.insert_post(conn, NewPost(user_id=uuid.uuid4(), content="x", platforms=["twitter"]))

        newest_first = ids[::-1]
        tied = set(ids[7:9])
        everything = posts.get_post_history(conn, user, limit=100)
        got = [r["id"] for r in everything]
        assert set(got[:2]) == tied and got[2:] == newest_first[2:]

        pages, before = [], None
        while True:
            page = posts.get_post_history(conn, str(user), limit=4, before=before)
            if not page:
                break
            pages.append([r["id"] for r in page])
            before = page[-1]["cursor"]
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [pid for p in pages for pid in p] == got  # no gaps, no repeats at the tie

        assert [r["id"] for r in posts.get_post_history(conn, user, status="partial")] == [ids[1]]
        assert [r["id"] for r in posts.get_post_history(conn, user, status="cancelled")] == [
            ids[2]]
        by_campaign = posts.get_post_history(conn, user, campaign_id=campaign)
        assert [r["id"] for r in by_campaign] == ids[3::-1]
        on_twitter = {r["id"] for r in posts.get_post_history(conn, user, platform="twitter")}
        assert on_twitter == {ids[i] for i in (1, 3, 5, 7)}
        now = datetime.now(UTC)
        window = posts.get_post_history(conn, user, since=now - timedelta(hours=6, minutes=30),
                                        until=now - timedelta(hours=3, minutes=30))
        assert [r["id"] for r in window] == [ids[5], ids[4], ids[3]]

        partial = everything[got.index(ids[1])]
        assert partial["status"] == "partial" and partial["provider"] == "LATE"
        assert [(t["platform"], t["status"]) for t in partial["targets"]] == [
            ("twitter", "posted"), ("linkedin", "failed")]
        assert [a["provider"] for a in partial["attempts"]] == ["postforme", "late"]
        assert partial["platform_post_urls"] == {"twitter": "https://x/t1"}

        one = posts.get_post(conn, str(ids[1]))
        assert one is not None and one["targets"] == partial["targets"]
        assert one["attempts"] == partial["attempts"]
        assert posts.get_post(conn, uuid.uuid4()) is None


def test_history_is_batched_not_n_plus_one(database_url: str) -> None:
    user = uuid.uuid4()
    with _conn(database_url) as conn:
        for i in range(30):
            posts.insert_post(conn, NewPost(user_id=user, content=f"p{i}", platforms=["twitter"]))
        statements: list[str] = []
        real_execute = conn.execute

        def counting_execute(query: Any, params: Any = None, **kw: Any) -> Any:
            statements.append(str(query))
            return real_execute(query, params, **kw)

        conn.execute = counting_execute  # type: ignore[method-assign]
        rows = posts.get_post_history(conn, user, limit=30)
        assert len(rows) == 30 and all(len(r["targets"]) == 1 for r in rows)
        assert len(statements) == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"user_id": "abc"}, "user_id"),
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"campaign_id": "c-1"}, "campaign_id"),
        ({"since": datetime(2024, 1, 1)}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"before": "garbage"}, "before"),
        ({"before": "2024-01-01T00:00:00|not-a-uuid"}, "before"),
    ],
)
def test_bad_history_queries(database_url: str, kwargs: dict, field: str) -> None:
    args = {"user_id": uuid.uuid4(), **kwargs}
    with _conn(database_url) as conn, pytest.raises(InvalidInput) as info:
        posts.get_post_history(conn, **args)
    assert info.value.field == field
    with _conn(database_url) as conn, pytest.raises(InvalidInput, match="post_id: must be a UUID"):
        posts.get_post(conn, "abc")
