"""Per-target content on the fake LATE: `customContent`, `customMedia` and
`platformSpecificData` kept on each target and echoed back as sent (as the real API
does), and the check LATE makes before anything publishes: a TikTok target must carry
`contentPreviewConfirmed` and `expressConsentGiven`, both true, else 422."""

from __future__ import annotations

from typing import Any

from providers.sandbox.late_wire import error
from providers.sandbox.wire import Response

TIKTOK_CONSENTS = ("contentPreviewConfirmed", "expressConsentGiven")
_CUSTOM = ("customContent", "customMedia", "platformSpecificData")


def consent_error(body: dict[str, Any]) -> Response | None:
    """LATE's 422 for a TikTok target without both consents, else None."""
    for i, target in enumerate(body.get("platforms") or []):
        if not isinstance(target, dict) or str(target.get("platform")).lower() != "tiktok":
            continue
        data = target.get("platformSpecificData")
        data = data if isinstance(data, dict) else {}
        missing = [name for name in TIKTOK_CONSENTS if data.get(name) is not True]
        if missing:
            return error(
                422,
                "TikTok requires the creator's consent: "
                + ", ".join(f"platformSpecificData.{m} must be true" for m in missing),
                code="VALIDATION_ERROR",
                param=f"platforms[{i}].platformSpecificData.{missing[0]}",
                platform="tiktok",
            )
    return None


def with_custom(targets: list[dict[str, Any]], body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the custom fields its request entry carried (by accountId)."""
    sent = {str(t.get("accountId")): t for t in body.get("platforms") or []
            if isinstance(t, dict)}
    for target in targets:
        entry = sent.get(str(target["accountId"]), {})
        for name in _CUSTOM:
            if entry.get(name) is not None:
                target[name] = entry[name]
    return targets
