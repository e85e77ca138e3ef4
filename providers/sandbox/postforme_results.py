"""PostForMe's results: what each account's publish job reports, and when.

The real service publishes asynchronously: a create answers `processing`, each account's
outcome arrives later as a result, and the post turns `processed` once every result is
in. Its per-platform job is retried once, so an account can have a failed result
followed by a successful one; and some posts never leave `processing`. Each of these is
a setting (result_delay_seconds, duplicate_result_rate, stuck_rate) so tests can turn
them on; the default answers at once, one result per account.
"""

from __future__ import annotations

from typing import Any

from providers.sandbox.common import Context, new_token, platform_post_id, platform_post_url
from providers.sandbox.fault_spec import FaultSpec
from providers.sandbox.outcomes import Failure, failure_of, target_failure
from providers.sandbox.state import Account
from providers.sandbox.wire import iso

Planned = tuple[float, dict[str, Any]]  # (when the result becomes visible, the result)


def wire_platform(platform: str) -> str:
    return "x" if platform == "twitter" else platform


def effective_media(
    media: list[dict[str, Any]],
    platform_configurations: dict[str, Any] | None,
    account_configurations: list[Any] | None,
    account: Account,
) -> list[tuple[str, str | None]]:
    """The media this account publishes: its account configuration's, else its
    platform configuration's, else the post's (the overrides PostForMe applies)."""
    chosen: Any = media
    configs = platform_configurations or {}
    for name in {account.platform, wire_platform(account.platform)}:
        config = configs.get(name)
        if isinstance(config, dict) and isinstance(config.get("media"), list):
            chosen = config["media"]
    for entry in account_configurations or []:
        if isinstance(entry, dict) and entry.get("social_account_id") == account.id:
            config = entry.get("configuration")
            if isinstance(config, dict) and isinstance(config.get("media"), list):
                chosen = config["media"]
    return [
        (m["url"], None) for m in chosen if isinstance(m, dict) and isinstance(m.get("url"), str)
    ]


def _result(post_id: str, account: Account, failure: Failure | None, at: float,
            details: dict[str, Any] | None = None) -> dict[str, Any]:
    ppid = None if failure else platform_post_id()
    return {
        "id": f"spr_{new_token()}",
        "post_id": post_id,
        "social_account_id": account.id,
        "success": failure is None,
        "error": None if failure is None else failure.message,
        "details": details or {},
        "platform_data": {
            "id": ppid,
            "url": ppid and platform_post_url(account.platform, account.username, ppid),
        },
        "created_at": iso(at),
    }


def result_delay(ctx: Context, spec: FaultSpec) -> float:
    """The fault's delay when set, else the server-wide default."""
    if spec.result_delay_seconds is not None:
        return spec.result_delay_seconds
    return ctx.postforme_result_delay_seconds


def plan_results(
    ctx: Context,
    spec: FaultSpec,
    post_id: str,
    accounts: list[tuple[Account, list[tuple[str, str | None]]]],
    start: float,
    details: dict[str, dict[str, Any]] | None = None,
) -> list[Planned] | None:
    """Every result the post will get, each with the time it becomes visible; None for
    a post that stays `processing` for good. A duplicated account's failed result shows
    halfway through the delay, its retry's success at the end."""
    if ctx.faults.draw(spec.stuck_rate):
        return None
    done = start + result_delay(ctx, spec)
    planned: list[Planned] = []
    for account, media in accounts:
        failure = target_failure(account.platform, media, ctx.media, spec)
        if failure is None and ctx.faults.draw(spec.duplicate_result_rate):
            first = (start + done) / 2
            retry = failure_of("platform_error", account.platform)
            planned.append((first, _result(post_id, account, retry, first)))
        extra = (details or {}).get(account.id)
        planned.append((done, _result(post_id, account, failure, done, extra)))
    return planned
