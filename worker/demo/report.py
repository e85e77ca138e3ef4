"""What the demo shows at the end: per post and platform, the outcome and any failover.

Why it exists: the summary is both the table a newcomer reads and the --json a test or
script checks, so it is built once (`summarise`) and only printed here; it also names what
went other than expected, which decides the exit code.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import click

from worker.demo.output import Out
from worker.demo.scenario import FAILOVER_PLATFORM, DemoPost

EXPECTED = {"posted", "partial"}
PROVIDER_NAMES = {"postforme": "PostForMe", "late": "LATE"}


def _label(provider: str | None, source: str | None) -> str:
    if not provider:
        return "-"
    return f"{PROVIDER_NAMES.get(provider, provider)} ({source or '?'})"


def failover_reason(row: dict[str, Any], target: dict[str, Any]) -> str | None:
    """Why a target left step 0 (user PostForMe): what the earlier steps did with it."""
    platform = target["platform"]
    if (target["provider"], target["credential_source"]) in ((None, None), ("postforme", "user")):
        return None
    if routed_reason(row, target):
        return None
    earlier = []
    for a in row["attempts"]:
        if platform not in (a["platforms"] or [platform]):
            continue
        if (a["provider"], a["credential_source"]) == (target["provider"],
                                                        target["credential_source"]):
            break
        label = _label(a["provider"], a["credential_source"])
        if a["outcome"] == "published":  # took the others; this platform stayed pending
            earlier.append(f"{label} published the others but not {platform}")
        else:
            earlier.append(f"{label}: {a['outcome']}")
    chain = "; ".join(earlier) if earlier else "an earlier step did not take it"
    return f"{chain} -> {_label(target['provider'], target['credential_source'])}"


def routed_reason(row: dict[str, Any], target: dict[str, Any]) -> str | None:
    """Why a target went straight past the PostForMe steps (it asks for what only LATE
    publishes): the skip's reason, when every earlier attempt on it was such a skip."""
    platform = target["platform"]
    earlier = [a for a in row["attempts"] if platform in (a["platforms"] or [])
               and a["provider"] != target["provider"]]
    if earlier and all(a["outcome"] == "skipped" and "only LATE" in (a["error"] or "")
                       for a in earlier):
        return str(earlier[0]["error"])
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def summarise(posts: list[DemoPost], finished: bool) -> dict[str, Any]:
    """Everything the report and --json show, and what went other than expected."""
    problems: list[str] = [] if finished else ["timed out before every post was final"]
    entries, failovers = [], []
    for post in posts:
        row = post.row or {"status": "never accepted", "targets": [], "attempts": []}
        if row["status"] not in EXPECTED:
            problems.append(f"post {post.label} ({post.post_id}) is {row['status']}")
        first = min((a["created_at"] for a in row["attempts"]), default=None)
        targets = []
        for t in row["targets"]:
            reason = failover_reason(row, t)
            targets.append({
                "platform": t["platform"], "status": t["status"], "provider": t["provider"],
                "credential_source": t["credential_source"], "url": t["platform_post_url"],
                "error": t["error"], "failover": reason, "routed": routed_reason(row, t),
            })
            if reason and t["status"] == "posted":
                failovers.append({"post_id": post.post_id, "platform": t["platform"],
                                  "provider": t["provider"], "reason": reason})
        entries.append({
            "label": post.label, "post_id": post.post_id, "status": row["status"],
            "scheduled_for": _iso(post.due), "seen_scheduled": post.seen_scheduled,
            "first_attempt_at": _iso(first), "targets": targets,
        })
    if finished and not any(f["platform"] == FAILOVER_PLATFORM for f in failovers):
        problems.append(f"{FAILOVER_PLATFORM} did not fall over to LATE")
    return {"ok": not problems, "problems": problems, "posts": entries, "failovers": failovers}


def print_table(summary: dict[str, Any], out: Out) -> None:
    rows = [("post", "platform", "status", "provider", "url")]
    notes = []
    for post in summary["posts"]:
        for t in post["targets"]:
            rows.append((post["label"], t["platform"], t["status"],
                         _label(t["provider"], t["credential_source"]),
                         t["url"] or (t["error"] or "")[:60] or "-"))
            if t["failover"]:
                notes.append(f"failover {post['label']} {t['platform']}: {t['failover']}")
            if t.get("routed"):
                notes.append(f"routed {post['label']} {t['platform']}: {t['routed']}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        out.line("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    for post in summary["posts"]:
        if post["scheduled_for"]:
            out.line(f"post {post['label']}: due {post['scheduled_for']}, first attempt "
                     f"{post['first_attempt_at'] or '-'}")
    for note in notes:
        out.line(note)


def report(summary: dict[str, Any], out: Out) -> None:
    out.line()
    print_table(summary, out)
    out.line()
    verdict = "all posts final as expected" if summary["ok"] else "; ".join(summary["problems"])
    out.line(f"{verdict} in {summary['elapsed_seconds']:.1f}s")
    out.line(f"Flower: {summary['flower_url']}"
             + ("" if summary["flower_ok"] else " (did not answer; see its log)"))
    out.line(f"HTTP API: {summary['api_url']} (docs at {summary['api_url']}/docs)")


def print_json(summary: dict[str, Any]) -> None:
    """The --json summary on stdout (the human output went to stderr)."""
    click.echo(json.dumps(summary, default=str))
