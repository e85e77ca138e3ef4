"""How PostForMe spells things on the wire: NestJS-style errors, account objects
("x" for twitter)."""

from __future__ import annotations

from typing import Any

from providers.sandbox.state import Account
from providers.sandbox.wire import Response, json_response

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def error(status: int, message: str, errors: list[str] | None = None) -> Response:
    """NestJS-shaped error; 400s list their field errors."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status == 400:
        body["errors"] = errors if errors is not None else [message]
    body["error"] = REASONS.get(status, "Error")
    return json_response(status, body)


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "platform": "x" if account.platform == "twitter" else account.platform,
        "username": account.username,
        "user_id": f"uid_{account.id[4:16]}",
        "status": "connected",
        "external_id": None,
        "profile_photo_url": None,
        "access_token_expires_at": None,
        "metadata": {},
    }
