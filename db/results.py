"""Platform ids that a provider tells after accepting a post: which targets still wait
for them, and storing them (PostForMe answers per platform through its results endpoint).

Apart from db.delivery because it is a different job: the delivery state machine moves
posts; this fills in what a posted target learns later, without changing any status.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from db import validate
from db.pool import Conn


def posted_without_ids(conn: Conn, post_id: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Posted targets still missing their platform post id (PostForMe answers those
    later, through its results endpoint), and the user's valid encrypted keys."""
    pid = validate.as_uuid(post_id, "post_id")
    rows = conn.execute(
        """SELECT t.platform, t.provider, t.credential_source, t.provider_post_id, p.user_id
           FROM post_targets t JOIN social_posts p ON p.id = t.post_id
           WHERE t.post_id = %s AND t.status = 'posted' AND t.platform_post_id IS NULL
             AND NOT t.results_known AND t.provider_post_id IS NOT NULL""",
        (pid,),
    ).fetchall()
    if not rows:
        return [], {}
    keys = conn.execute(
        """SELECT provider, encrypted_api_key FROM user_social_credentials
           WHERE user_id = %s AND invalid_at IS NULL""",
        (rows[0]["user_id"],),
    ).fetchall()
    return rows, {k["provider"]: k["encrypted_api_key"] for k in keys}


def fill_results(conn: Conn, post_id: str, results: list[dict[str, Any]]) -> int:
    """Store one post's per-platform ids and urls learnt after it was accepted."""
    return fill_results_many(conn, [{**r, "post_id": post_id} for r in results])


def fill_results_many(conn: Conn, results: list[dict[str, Any]]) -> int:
    """Store per-platform ids and urls of many posts (rows: post_id, platform, id, url,
    error), then rebuild those posts' seed columns from their targets. One transaction,
    two statements whatever the count (a CTE would read the targets as they were)."""
    if not results:
        return 0
    for r in results:
        r["post_id"] = str(validate.as_uuid(r["post_id"], "post_id"))
    with conn.transaction():
        rows = conn.execute(
            """UPDATE post_targets pt SET
                   platform_post_id = COALESCE(pt.platform_post_id, r.id),
                   platform_post_url = COALESCE(pt.platform_post_url, r.url),
                   error = COALESCE(r.error, pt.error),
                   results_known = true,
                   updated_at = now()
               FROM jsonb_to_recordset(%s) AS r(post_id uuid, platform text, id text,
                                                url text, error text)
               WHERE pt.post_id = r.post_id AND pt.platform = r.platform
                 AND pt.status = 'posted'
               RETURNING pt.post_id""",
            (Jsonb(results),),
        ).fetchall()
        touched = list({r["post_id"] for r in rows})
        if touched:
            conn.execute(
                """UPDATE social_posts p SET
                       platform_post_ids = (
                           SELECT COALESCE(jsonb_object_agg(t.platform, t.platform_post_id)
                                           FILTER (WHERE t.platform_post_id IS NOT NULL), '{}')
                           FROM post_targets t WHERE t.post_id = p.id),
                       platform_post_urls = (
                           SELECT COALESCE(jsonb_object_agg(t.platform, t.platform_post_url)
                                           FILTER (WHERE t.platform_post_url IS NOT NULL), '{}')
                           FROM post_targets t WHERE t.post_id = p.id),
                       updated_at = now()
                   WHERE p.id = ANY(%s)""",
                (touched,),
            )
    return len(rows)


def awaiting_ids(
    conn: Conn, *, settle_seconds: float, window_seconds: float, limit: int
) -> list[dict[str, Any]]:
    """Posted targets still without a platform id, recorded at least `settle_seconds`
    ago and at most `window_seconds` ago (after that the provider will not tell)."""
    return conn.execute(
        """SELECT t.post_id, t.platform, t.provider, t.credential_source, t.provider_post_id,
                  p.user_id
           FROM post_targets t JOIN social_posts p ON p.id = t.post_id
           WHERE t.status = 'posted' AND t.platform_post_id IS NULL AND NOT t.results_known
             AND t.provider_post_id IS NOT NULL
             AND t.updated_at < now() - make_interval(secs => %s)
             AND t.updated_at > now() - make_interval(secs => %s)
           ORDER BY t.updated_at
           LIMIT %s""",
        (settle_seconds, window_seconds, limit),
    ).fetchall()
