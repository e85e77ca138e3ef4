"""LATE's post record and how its targets publish.

publishNow publishes inside the request, but the answer need not be final: a target
can still be `pending` (it finishes `pending_seconds` later), and a target LATE showed
`published` can turn `failed` when its background check finds the publish never
completed (`regress_platforms`). Both are kept as planned changes on the post, applied
when someone looks at it after their time, so GET /posts/{id} shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from providers.sandbox.common import Context, platform_post_id, platform_post_url
from providers.sandbox.fault_spec import FaultSpec
from providers.sandbox.outcomes import regress_failure, target_failure
from providers.sandbox.state import Account
from providers.sandbox.wire import iso

UNFINISHED = ("pending", "processing", "uploading")
# (when, accountId, the fields the target takes then)
Plan = tuple[float, str, dict[str, Any]]


@dataclass
class Post:
    id: str
    key: str
    content: str
    targets: list[dict[str, Any]]
    accounts: list[Account]
    media_items: list[dict[str, Any]]
    scheduled_for: float | None
    timezone: str
    status: str  # draft | scheduled | publishing | published | failed | partial | cancelled
    created_at: float
    updated_at: float
    published_at: float | None = None
    request_id: str | None = None
    plans: list[Plan] = field(default_factory=list)

    @property
    def ident(self) -> str | None:
        return self.request_id

    def due(self, now: float) -> bool:
        when = self.scheduled_for
        return self.status == "scheduled" and when is not None and when <= now

    def to_json(self) -> dict[str, Any]:
        return {
            "_id": self.id,
            "content": self.content,
            "status": self.status,
            "platforms": [dict(t) for t in self.targets],
            "mediaItems": self.media_items,
            "scheduledFor": None if self.scheduled_for is None else iso(self.scheduled_for),
            "timezone": self.timezone,
            "publishedAt": None if self.published_at is None else iso(self.published_at),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }


def webhook_target(target: dict[str, Any]) -> dict[str, Any]:
    """A target as LATE's webhooks show it: `publishedUrl` and `error`, not the REST
    `platformPostUrl` and `errorMessage`."""
    return {
        "platform": target["platform"],
        "status": target["status"],
        "accountId": target["accountId"],
        "platformPostId": target.get("platformPostId"),
        "publishedUrl": target.get("platformPostUrl"),
        "publishedAt": target.get("publishedAt"),
        "error": target.get("errorMessage"),
    }


def webhook_post(post: Post) -> dict[str, Any]:
    """The post as LATE's webhooks show it: `id`, not the REST `_id`."""
    return {
        "id": post.id,
        "content": post.content,
        "status": post.status,
        "scheduledFor": None if post.scheduled_for is None else iso(post.scheduled_for),
        "publishedAt": None if post.published_at is None else iso(post.published_at),
        "platforms": [webhook_target(t) for t in post.targets],
    }


def new_target(account: Account) -> dict[str, Any]:
    """A target before publishing, with every field the real one carries."""
    return {
        "platform": account.platform,
        "accountId": account.id,
        "profileId": account.profile_id,
        "status": "pending",
        "platformPostId": None,
        "platformPostUrl": None,
        "publishedAt": None,
        "errorMessage": None,
        "errorCategory": None,
        "errorSource": None,
    }


def overall(targets: list[dict[str, Any]]) -> str:
    """The post's status from its targets: `publishing` while any is unfinished."""
    if any(t["status"] in UNFINISHED for t in targets):
        return "publishing"
    published = sum(1 for t in targets if t["status"] == "published")
    if published == len(targets):
        return "published"
    return "failed" if published == 0 else "partial"


def _outcome(
    ctx: Context, spec: FaultSpec, account: Account, media: list[tuple[str, str | None]],
    at: float,
) -> dict[str, Any]:
    failure = target_failure(account.platform, media, ctx.media, spec)
    if failure is not None:
        return {"status": "failed", "platformPostId": None, "platformPostUrl": None,
                "publishedAt": None, **failure.late_fields()}
    ppid = platform_post_id()
    return {
        "status": "published",
        "platformPostId": ppid,
        "platformPostUrl": platform_post_url(account.platform, account.username, ppid),
        "publishedAt": iso(at),
        "errorMessage": None,
        "errorCategory": None,
        "errorSource": None,
    }


def publish(
    ctx: Context, spec: FaultSpec, post: Post, start: float, only_failed: bool = False
) -> None:
    """Publish (or re-publish failed) targets from `start`: at once, or still `pending`
    for pending_seconds when pending_platforms / pending_rate say so; successes on a
    regress platform also get their later failure planned."""
    common = [(m["url"], m.get("type")) for m in post.media_items]
    by_id = {a.id: a for a in post.accounts}
    for target in post.targets:
        if only_failed and target["status"] != "failed":
            continue
        account = by_id[target["accountId"]]
        own = target.get("customMedia")
        media = [(m["url"], m.get("type")) for m in own] if own else common
        post.plans = [p for p in post.plans if p[1] != account.id]
        held = account.platform in spec.pending_platforms or ctx.faults.draw(spec.pending_rate)
        at = start + spec.pending_seconds if held else start
        outcome = _outcome(ctx, spec, account, media, at)
        if held:
            target.update(new_target(account))
            post.plans.append((at, account.id, outcome))
        else:
            target.update(outcome)
        after = spec.regress_platforms.get(account.platform)
        if after is not None and outcome["status"] == "published":
            post.plans.append((at + after, account.id, _regressed(account)))
    post.plans.sort(key=lambda plan: plan[0])
    refresh(post, start)


def _regressed(account: Account) -> dict[str, Any]:
    """The target after LATE's check found the publish missing; the platform ids it
    showed stay, so only `status` tells (a client must not trust platformPostId)."""
    return {"status": "failed", **regress_failure(account.platform).late_fields()}


def apply_due(post: Post, now: float) -> None:
    """Apply every planned change whose time has come, in time order."""
    if not post.plans or post.plans[0][0] > now:
        return
    targets = {t["accountId"]: t for t in post.targets}
    last = post.updated_at
    while post.plans and post.plans[0][0] <= now:
        at, account_id, fields = post.plans.pop(0)
        targets[account_id].update(fields)
        last = max(last, at)
    refresh(post, last)


def refresh(post: Post, at: float) -> None:
    """Recompute the post's status after its targets changed at `at`."""
    post.status = overall(post.targets)
    post.updated_at = max(post.updated_at, at)
    if post.status in ("published", "partial") and post.published_at is None:
        post.published_at = at
