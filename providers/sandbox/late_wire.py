"""How LATE spells things on the wire: its error body and its account objects."""

from __future__ import annotations

from typing import Any

from providers.sandbox.state import Account
from providers.sandbox.wire import Response, json_response

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


def error(status: int, message: str, **extra: Any) -> Response:
    """LATE's error body: {error, type, code, param?, platform?, details?}."""
    body: dict[str, Any] = {
        "error": message,
        "type": _TYPES.get(status, "api_error"),
        "code": status,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return json_response(status, body)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "_id": account.id,
        "platform": account.platform,
        "username": account.username,
        "displayName": account.username.replace("_", " ").title(),
        "profileId": account.profile_id,
        "isActive": True,
        "needsReconnection": False,
    }
