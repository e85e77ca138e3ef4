"""Input checks shared by the repositories: refuse bad values with a message naming
the field and the rule, before PostgreSQL answers with a cryptic one."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from db.errors import InvalidInput
from db.states import CREDENTIAL_SOURCES, PROVIDERS

MAX_ERROR = 2000  # error texts are truncated to keep rows and history pages small


def clip(text: str | None) -> str | None:
    """`text` cut to MAX_ERROR characters (an ellipsis marks the cut), None kept."""
    if text is None:
        return None
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def as_uuid(value: object, field: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            pass
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise InvalidInput(field, f"must be a UUID, got {shown}")


def opt_uuid(value: object, field: str) -> uuid.UUID | None:
    return None if value is None else as_uuid(value, field)


def aware(value: object, field: str) -> datetime:
    """A timezone-aware datetime; a naive one is ambiguous and refused."""
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidInput(field, "must be timezone-aware")
    return value


def opt_aware(value: object, field: str) -> datetime | None:
    return None if value is None else aware(value, field)


def parse_aware(value: object, field: str) -> datetime | None:
    """Accept an aware datetime or an ISO-8601 string with an offset ('Z' allowed)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, f"must be an ISO-8601 datetime, got {value!r}") from None
    return aware(value, field)


def provider(value: object, field: str = "provider") -> str:
    if not isinstance(value, str) or value not in PROVIDERS:
        raise InvalidInput(field, f"must be one of {', '.join(PROVIDERS)}; got {value!r}")
    return value


def opt_provider(value: object, field: str = "provider") -> str | None:
    return None if value is None else provider(value, field)


def credential_source(value: object, field: str = "credential_source") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in CREDENTIAL_SOURCES:
        raise InvalidInput(
            field, f"must be one of {', '.join(CREDENTIAL_SOURCES)}; got {value!r}"
        )
    return value


def platform(value: object, field: str = "platform") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise InvalidInput(field, f"must be a non-empty platform name, got {value!r}")
    return value.strip().lower()


def platforms(value: object, field: str = "platforms", allow_empty: bool = False) -> list[str]:
    """A list of distinct platform names, order kept (it decides the 'first' provider id)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(field, f"must be a list of platform names, got {value!r}")
    out: list[str] = []
    for i, item in enumerate(value):
        name = platform(item, f"{field}[{i}]")
        if name in out:
            raise InvalidInput(field, f"lists {name!r} twice")
        out.append(name)
    if not out and not allow_empty:
        raise InvalidInput(field, "must name at least one platform")
    return out


def str_list(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput(field, f"must be a list of strings, got {value!r}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"{field}[{i}]", f"must be a non-empty string, got {item!r}")
        out.append(item)
    return out


def positive_int(value: object, field: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(field, f"must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInput(field, f"must be at most {maximum}, got {value}")
    return value


def json_object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def account_ids(value: Any, platforms: list[str]) -> dict[str, str] | None:
    """platform -> account id, each platform one of the post's; None when empty."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise InvalidInput("account_ids", "must map platform names to account id strings")
    extra = sorted(set(value) - set(platforms))
    if extra:
        raise InvalidInput("account_ids", f"names platforms the post is not for: {extra}")
    return dict(value)
