"""How PostForMe spells things on the wire: NestJS-style errors, account objects
("x" for twitter), and which media URLs its create refuses."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

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
        "external_id": account.external_id,
        "profile_photo_url": None,
        "access_token_expires_at": None,
        "metadata": {},
    }


def is_local_host(host: str) -> bool:
    """localhost, *.localhost or an IP address: hosts the real create refuses."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _media_urls(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field path, value) of every media URL a create carries: the post's media and
    the per-platform and per-account overrides."""
    found: list[tuple[str, Any]] = []

    def collect(where: str, media: Any) -> None:
        if not isinstance(media, list):
            return
        for i, item in enumerate(media):
            if isinstance(item, dict):
                for name in ("url", "thumbnail_url"):
                    if item.get(name) is not None:
                        found.append((f"{where}[{i}].{name}", item[name]))

    collect("media", body.get("media"))
    configs = body.get("platform_configurations")
    if isinstance(configs, dict):
        for platform, config in configs.items():
            if isinstance(config, dict):
                collect(f"platform_configurations.{platform}.media", config.get("media"))
    accounts = body.get("account_configurations")
    if isinstance(accounts, list):
        for j, entry in enumerate(accounts):
            config = entry.get("configuration") if isinstance(entry, dict) else None
            if isinstance(config, dict):
                collect(f"account_configurations[{j}].configuration.media", config.get("media"))
    return found


def local_media_errors(body: dict[str, Any]) -> list[str]:
    """The real create's media URL check: http(s), and not a local or IP host."""
    errors: list[str] = []
    for where, value in _media_urls(body):
        try:
            parts = urlsplit(value) if isinstance(value, str) else None
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            errors.append(f"{where} must be an http(s) URL")
        elif is_local_host(parts.hostname):
            errors.append(
                f"{where} must be a public URL: localhost and IP address hosts are not allowed"
            )
    return errors
