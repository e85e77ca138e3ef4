"""The demo's story: one user, one campaign to nine platforms, and waiting for the ledger.

Why it exists: this is what the demo shows. A user whose PostForMe key reaches every
platform but Bluesky (which falls over to the global LATE key), a campaign with a batch now,
a batch scheduled a few seconds ahead (released by beat), and one post with the right words
and options per network (its own caption for X, LinkedIn and Pinterest, a YouTube title, a
Pinterest board, an X thread, which only LATE publishes), all enqueued through the
producer client as a service would, then followed in PostgreSQL until every post is final.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.demo.output import Out
from worker.demo.processes import Child, check_children, wait_until
from worker.demo.stores import Stores

if TYPE_CHECKING:
    from celery import Celery

    from db.pool import Conn
    from providers.sandbox import SandboxServer

PLATFORMS = (
    "twitter", "linkedin", "instagram", "facebook", "tiktok",
    "threads", "bluesky", "youtube", "pinterest",
)
FAILOVER_PLATFORM = "bluesky"  # the user's PostForMe key has no account there
# The real providers' per-key limits (docs/providers.md), so the demo shows pacing.
SANDBOX_RATE_LIMITS = {"postforme": "5/second;40/minute", "late": "60/minute"}
FINAL = {"posted", "partial", "failed", "unconfirmed", "cancelled"}


@dataclass
class Keys:
    """The demo's provider keys: random per run, known only to this run's sandbox."""

    user_postforme: str = field(default_factory=lambda: "demo-user-pfm-" + uuid.uuid4().hex)
    global_late: str = field(default_factory=lambda: "demo-global-late-" + uuid.uuid4().hex)


def process_env(
    stores: Stores, key: str, sandbox: SandboxServer, keys: Keys, state: Path
) -> dict[str, str]:
    """What the worker, beat and Flower need: stores, vault key, the sandbox as both
    providers, loopback media allowed, no CDN wait, and a chain of user PostForMe then
    global LATE (a global PostForMe key from the caller's environment is left out)."""
    env = dict(os.environ)
    env.pop("POSTFORME_API_KEY", None)
    if stores.embedded_redis:
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_RESULT_BACKEND", None)
    env.update(
        DATABASE_URL=stores.database_url,
        REDIS_URL=stores.redis_url,
        ENCRYPTION_KEY=key,
        POSTFORME_BASE_URL=sandbox.postforme_url,
        LATE_BASE_URL=sandbox.late_url,
        LATE_API_KEY=keys.global_late,
        SOCIALPOST_ALLOW_PRIVATE_URLS="1",
        LATE_CDN_WAIT_SECONDS="0",
        SOCIALPOST_STATE_DIR=str(state),
        SOCIALPOST_BEAT_SCHEDULE=str(state / "celerybeat-schedule"),
    )
    return env


@dataclass
class DemoPost:
    label: str
    post_id: str
    platforms: list[str]
    due: datetime | None = None
    seen_scheduled: bool = False
    row: dict[str, Any] | None = None


def seed_user(sandbox: SandboxServer, keys: Keys) -> str:
    """A user whose PostForMe key reaches every platform but Bluesky; the global LATE key
    reaches all nine; both providers limit their keys as the real ones do. Returns the
    user id."""
    from db import credentials
    from db.pool import connect
    from db.vault import Vault

    for provider, spec in SANDBOX_RATE_LIMITS.items():
        sandbox.set_rate_limits(provider, spec)
    sandbox.register_key(
        "postforme", keys.user_postforme, [p for p in PLATFORMS if p != FAILOVER_PLATFORM]
    )
    sandbox.register_key("late", keys.global_late)
    user_id = str(uuid.uuid4())
    with connect() as conn:
        credentials.save_credentials(conn, Vault.from_env(), user_id, "postforme",
                                     keys.user_postforme)
    return user_id


def publish(app: Celery, sandbox_url: str, user_id: str, delay: float) -> list[DemoPost]:
    """Create the campaign and enqueue it through the producer client, as a service would."""
    from db import campaigns
    from db.pool import connect
    from tasks.client import PublishClient

    image = f"{sandbox_url}/_sandbox/sample/image.jpg"
    video = f"{sandbox_url}/_sandbox/sample/video.mp4"
    due = (datetime.now(UTC) + timedelta(seconds=delay)).replace(microsecond=0)
    consents = {"content_preview_confirmed": True, "express_consent_given": True}
    calendar = {"batches": [
        {"caption": "socialpost demo: one caption, three networks. #demo", "media_urls": []},
        {"caption": "socialpost demo: a picture, released on time by beat. #demo",
         "media_urls": [image], "scheduled_for": due.isoformat(),
         "overrides": {"tiktok": {**consents, "privacy": "public"}}},
    ]}
    with connect() as conn:
        campaign_id = str(campaigns.create_campaign(conn, user_id, "socialpost demo", calendar))
    client = PublishClient(app)
    text = ["facebook", "threads", FAILOVER_PLATFORM]
    pictures = ["instagram", "tiktok"]
    tuned = ["twitter", "linkedin", "youtube", "pinterest"]
    return [
        DemoPost("1 now", client.enqueue_batch(user_id, campaign_id, 1, text), text),
        DemoPost(
            "2 scheduled",
            client.enqueue_batch(user_id, campaign_id, 2, pictures, media_urls=[image]),
            pictures, due=due,
        ),
        DemoPost(
            "3 per-platform",
            client.enqueue_post(
                user_id, "socialpost demo: one post, the right words for each network.",
                tuned, media_urls=[video], campaign_id=campaign_id,
                overrides=per_platform(image),
            ),
            tuned,
        ),
    ]


def per_platform(image: str) -> dict[str, dict[str, Any]]:
    """Post 3's own words and options per network: the thread sends X through LATE."""
    return {
        "twitter": {"content": "socialpost demo: one post, four networks. A thread follows.",
                    "thread": ["2/ LinkedIn gets the long version, YouTube a title.",
                               "3/ Pinterest pins the picture to a board."]},
        "linkedin": {"content": "socialpost demo. One post, written once and tuned per "
                                "network: this longer text is LinkedIn's own, X gets a "
                                "thread, YouTube a title and Pinterest a board."},
        "youtube": {"title": "socialpost demo", "privacy": "unlisted"},
        "pinterest": {"content": "Pinned by the socialpost demo.", "board_id": "demo-board",
                      "title": "socialpost demo", "media_urls": [image]},
    }


def producer_app(broker: str, backend: str) -> Celery:
    """Our Celery settings (routes, serialisation) on the demo's broker. `worker.app`
    read REDIS_URL when `socialpost` started, before the demo chose its Redis."""
    from celery import Celery

    app = Celery("socialpost-demo", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = broker
    app.conf.result_backend = backend
    return app


def refresh(posts: list[DemoPost], conn: Conn) -> None:
    from db.posts import get_post

    for post in posts:
        post.row = get_post(conn, post.post_id)
        if post.row is not None and post.row["status"] == "scheduled":
            post.seen_scheduled = True


def is_final(post: DemoPost) -> bool:
    return post.row is not None and post.row["status"] in FINAL


def progress_text(posts: list[DemoPost], started: float) -> str:
    total = sum(len(p.platforms) for p in posts)
    final = sum(
        1 for p in posts if p.row for t in p.row["targets"] if t["status"] != "pending"
    )
    width = 18
    bar = "#" * (final * width // total) + "." * (width - final * width // total)
    states = ", ".join(
        f"#{p.label.split()[0]} {p.row['status'] if p.row else 'sent'}" for p in posts
    )
    elapsed = time.monotonic() - started
    return f"[{bar}] {final}/{total} platforms final | {states} | {elapsed:4.1f}s"


def wait_for_posts(
    posts: list[DemoPost], children: list[Child], out: Out, timeout: float, started: float,
) -> bool:
    """Poll the ledger until every post is final; False on timeout. A child that dies
    stops the wait with its log tail (a crash must not look like a slow post)."""
    from db.pool import connect

    deadline = time.monotonic() + timeout
    last = ""
    with connect() as conn:
        while True:
            refresh(posts, conn)
            text = progress_text(posts, started)
            if text.split(" | ")[:2] != last.split(" | ")[:2] or out.stream.isatty():
                out.progress(text)
                last = text
            if all(is_final(p) for p in posts):
                out.end_progress()
                return True
            check_children(children)
            if time.monotonic() > deadline:
                out.end_progress()
                return False
            time.sleep(0.2)


def wait_for_urls(posts: list[DemoPost], timeout: float) -> None:
    """PostForMe reports platform urls shortly after accepting (beat collects them)."""
    from db.pool import connect

    def filled() -> bool:
        refresh(posts, conn)
        return all(
            t["platform_post_url"] for p in posts if p.row
            for t in p.row["targets"] if t["status"] == "posted"
        )

    with connect() as conn:
        wait_until(filled, timeout, every=0.25)
