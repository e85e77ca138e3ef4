"""How posts, targets and attempts look in tables: shared by history, show, post --wait
and campaign publish so a post reads the same everywhere."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from worker.commands import render

Post = Mapping[str, Any]


def outcomes(post: Post) -> str:
    """Per-platform outcome in platform order: 'twitter:posted linkedin:failed'."""
    targets = post.get("targets") or []
    if not targets:
        return " ".join(f"{p}:?" for p in post.get("platforms") or []) or render.EMPTY
    return " ".join(f"{t['platform']}:{t['status']}" for t in targets)


def targets_table(post: Post) -> str:
    rows = [
        (
            t["platform"],
            t["status"],
            t.get("provider"),
            t.get("credential_source"),
            t.get("platform_post_id"),
            t.get("platform_post_url"),
            t.get("error"),
        )
        for t in post.get("targets") or []
    ]
    if not rows:
        return "(no targets)"
    return render.table(
        ("platform", "status", "provider", "source", "platform id", "url", "error"),
        rows,
        {"error": 100},  # ids and urls whole: operators copy them
    )


def attempts_table(post: Post) -> str:
    rows = [
        (
            i,
            a.get("created_at"),
            a.get("step"),
            a.get("provider"),
            a.get("credential_source"),
            a.get("platforms"),
            a.get("http_status"),
            f"{a['latency_ms']} ms" if a.get("latency_ms") is not None else None,
            a.get("outcome"),
            a.get("error"),
        )
        for i, a in enumerate(post.get("attempts") or [], start=1)
    ]
    if not rows:
        return "(no attempts yet)"
    return render.table(
        ("#", "at", "step", "provider", "source", "platforms", "http", "latency", "outcome",
         "error"),
        rows,
        {"platforms": 30, "error": 100},
    )


def post_header(post: Post) -> str:
    """Key facts first; optional ones (schedule, campaign, error...) only when set."""
    campaign = post.get("campaign_id")
    always = [
        ("post", post["id"]),
        ("user", post.get("user_id")),
        ("status", post.get("status")),
        ("platforms", post.get("platforms")),
        ("created", post.get("created_at")),
    ]
    optional = [
        ("scheduled for", post.get("scheduled_for")),
        ("posted", post.get("posted_at")),
        ("finished", post.get("finished_at")),
        ("campaign", f"{campaign} batch {post.get('batch_number')}" if campaign else None),
        ("provider", post.get("provider")),
        ("step", post.get("step")),
        ("attempts", len(post.get("attempts") or []) or None),
        ("media", post.get("media_urls") or None),
        ("own content", _overridden(post.get("overrides"))),
        ("error", post.get("error_message")),
    ]
    content = ("content", render.clip(render.cell(post.get("content")), 200))
    return render.fields([*always, *[f for f in optional if f[1] is not None], content])


def _overridden(overrides: object) -> str | None:
    """Which platforms have their own fields, and which: `linkedin: content; youtube:
    title, privacy` (the values are in `show --json`)."""
    if not isinstance(overrides, dict) or not overrides:
        return None
    return "; ".join(f"{platform}: {', '.join(fields)}"
                     for platform, fields in overrides.items() if isinstance(fields, dict))


def show_post(post: Post) -> str:
    """Header, targets, attempts and events: everything an operator asks about one post."""
    parts = [
        post_header(post),
        render.section("Targets", targets_table(post)),
        render.section("Attempts", attempts_table(post)),
    ]
    if post.get("events"):
        parts.append(render.section("Events", events_table(post)))
    return "\n".join(parts)


def events_table(post: Post) -> str:
    """The post's outcome events (the outbox), oldest first: what producers were told."""
    return render.table(
        ("at", "event id", "type", "status", "platform", "dispatched"),
        [(e.get("created_at"), e.get("id"), e.get("type"), e.get("status"),
          e.get("platform"), e.get("dispatched_at")) for e in post.get("events") or []],
    )


def history_table(posts: Iterable[Post]) -> str:
    rows = [
        (
            p.get("created_at"),
            p["id"],
            p.get("status"),
            outcomes(p),
            f"{p['batch_number'] or '-'}@{str(p['campaign_id'])[:8]}" if p.get("campaign_id")
            else None,
            p.get("content"),
            p.get("error_message"),
        )
        for p in posts
    ]
    return render.table(
        ("created", "post id", "status", "targets", "campaign", "content", "error"),
        rows,
        {"targets": 60, "content": 40, "error": 50},
    )

