"""Provider webhooks in: the statements (tasks.provider_hooks decides).

A verified event is taken once (`first_time`, by the provider's own event id); the
targets it speaks of are read in the shape the confirmation sweep takes them in
(`targets_of`), so tasks.confirm judges and writes them the same way. Where the hook
alone cannot decide (a PostForMe failure before its post is `processed`, a result for an
account we cannot place), `nudge` puts the targets at the front of the sweep's line.
"""

from __future__ import annotations

from typing import Any

from db.pool import Conn
from db.vault import Vault

PROVIDERS = ("postforme", "late")


def _provider(value: str) -> str:
    if value not in PROVIDERS:
        raise ValueError(f"provider: must be one of {list(PROVIDERS)}, got {value!r}")
    return value


def first_time(conn: Conn, provider: str, event_id: str) -> bool:
    """Record the event; False when it was taken before (a provider's retry). In the
    caller's transaction: rolled back with it, the event counts as never taken."""
    row = conn.execute(
        """INSERT INTO provider_events (provider, event_id) VALUES (%s, %s)
           ON CONFLICT DO NOTHING RETURNING event_id""",
        (_provider(provider), event_id[:200])).fetchone()
    return row is not None


def prune_events(conn: Conn, older_than_seconds: float, limit: int = 10_000) -> int:
    """Forget events taken longer ago than any provider retries; how many."""
    cur = conn.execute(
        """DELETE FROM provider_events WHERE (provider, event_id) IN (
               SELECT provider, event_id FROM provider_events
               WHERE received_at < now() - make_interval(secs => %s) LIMIT %s)""",
        (float(older_than_seconds), limit))
    return cur.rowcount


# The targets of one provider post that a platform's answer may still change, as
# confirmations.take_awaiting returns them (accepted; LATE's posted ones within the
# revision window).
_TARGETS = """
SELECT t.post_id, t.platform, t.status, t.provider, t.credential_source,
       t.provider_post_id, t.accepted_at, t.error, p.user_id
FROM post_targets t JOIN social_posts p ON p.id = t.post_id
WHERE t.provider = %(provider)s AND t.provider_post_id = %(ppid)s
  AND (t.status = 'accepted'
       OR (t.status = 'posted' AND t.provider = 'late'
           AND t.updated_at > now() - make_interval(secs => %(window)s)))
"""


def targets_of(conn: Conn, provider: str, provider_post_id: str,
               revision_window: float) -> list[dict[str, Any]]:
    """The targets `provider`'s post `provider_post_id` holds that still wait for (or,
    LATE's, may still revise) a platform's answer."""
    return conn.execute(_TARGETS, {"provider": _provider(provider),
                                   "ppid": provider_post_id,
                                   "window": float(revision_window)}).fetchall()


def platforms_of(conn: Conn, provider: str, provider_post_id: str) -> list[str]:
    """Every platform `provider`'s post `provider_post_id` holds, waiting or not."""
    rows = conn.execute(
        "SELECT platform FROM post_targets WHERE provider = %s AND provider_post_id = %s",
        (_provider(provider), provider_post_id)).fetchall()
    return [r["platform"] for r in rows]


def create_in_flight(conn: Conn, within_seconds: float) -> bool:
    """Whether a worker has a create call out now (its post claimed and sending, started
    less than `within_seconds` ago): the provider may already be telling us about a post
    whose id that worker has not yet recorded."""
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM social_posts
                          WHERE status = 'publishing' AND lease_owner IS NOT NULL
                            AND send_started_at > now() - make_interval(secs => %s)) AS busy""",
        (float(within_seconds),)).fetchone()
    return bool(row and row["busy"])


def nudge(conn: Conn, provider: str, provider_post_id: str) -> int:
    """The post's accepted targets go first in the confirmation sweep's next pass."""
    cur = conn.execute(
        """UPDATE post_targets SET checked_at = NULL
           WHERE provider = %s AND provider_post_id = %s AND status = 'accepted'""",
        (_provider(provider), provider_post_id))
    return cur.rowcount


def save_registration(conn: Conn, vault: Vault, provider: str, url: str,
                      webhook_id: str | None, secret: str) -> None:
    """Where `provider` now sends its webhooks, and the secret (encrypted)."""
    conn.execute(
        """INSERT INTO provider_webhooks (provider, url, webhook_id, secret_enc)
           VALUES (%s, %s, %s, %s)
           ON CONFLICT (provider) DO UPDATE SET url = EXCLUDED.url,
               webhook_id = EXCLUDED.webhook_id, secret_enc = EXCLUDED.secret_enc,
               registered_at = now()""",
        (_provider(provider), url, webhook_id, vault.encrypt(secret)))


def registrations(conn: Conn) -> list[dict[str, Any]]:
    """Every registration (provider, url, webhook_id, registered_at, secret_enc)."""
    return conn.execute(
        "SELECT provider, url, webhook_id, registered_at, secret_enc FROM provider_webhooks "
        "ORDER BY provider").fetchall()


def stored_secret(conn: Conn, vault: Vault, provider: str) -> str | None:
    """The secret `socialpost hooks register` stored for `provider`, decrypted."""
    row = conn.execute("SELECT secret_enc FROM provider_webhooks WHERE provider = %s",
                       (_provider(provider),)).fetchone()
    return vault.decrypt(row["secret_enc"]) if row else None
