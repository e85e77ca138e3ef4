"""One provider's fault settings (FaultSpec) and the vocabulary they are written in.

Kept apart from the decision flow in faults.py so the settings and their validation
(CLI flags, JSON over HTTP, keyword arguments) read in one place. Besides the
create-post faults there are outcome faults: what happens to a post after the
provider accepted it (results late or never, a retry's second result, LATE targets
still pending, a publish that regresses to failed), as the real services do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PROVIDERS = ("postforme", "late")
PLATFORMS = (
    "twitter",
    "linkedin",
    "instagram",
    "facebook",
    "tiktok",
    "threads",
    "bluesky",
    "youtube",
    "pinterest",
)
# LATE's errorCategory taxonomy; an injected failure is named by one of these.
ERROR_CLASSES = (
    "auth_expired",
    "user_content",
    "user_abuse",
    "account_issue",
    "platform_rejected",
    "platform_error",
    "platform_rate_limit",
    "quota_exhausted",
    "system_error",
    "unknown",
)
DEFAULT_FAIL_CLASS = "platform_error"  # what a bare platform list in fail_platforms means


def check_provider(provider: str) -> str:
    """Normalise a provider name or raise ValueError naming the valid ones."""
    name = str(provider).strip().lower()
    if name not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: use 'postforme' or 'late'")
    return name


def canonical_platform(name: str) -> str:
    """PostForMe calls Twitter 'x'; internally every platform has its seed name."""
    value = str(name).strip().lower()
    if value == "x":
        value = "twitter"
    if value not in PLATFORMS:
        raise ValueError(f"unknown platform {name!r}: use one of {', '.join(PLATFORMS)}")
    return value


def _platform_set(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if not isinstance(value, Iterable):
        raise ValueError("platform lists must be a list or a comma-separated string")
    return frozenset(canonical_platform(p) for p in value)


def _platform_map(name: str, value: Any, default: Any) -> dict[str, str]:
    """{platform: value} from a mapping, a list (each gets `default`) or a CLI string
    'bluesky:platform_error,linkedin' (a bare name gets `default`)."""
    if value is None:
        return {}
    if isinstance(value, str):
        pairs = [part.partition(":") for part in value.split(",") if part.strip()]
        value = {p.strip(): (v.strip() if sep else default) for p, sep, v in pairs}
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, Iterable):
        items = [(p, default) for p in value]
    else:
        raise ValueError(f"{name} must be an object, a list or 'platform:value,...'")
    return {canonical_platform(p): str(v) for p, v in items}


def _fail_classes(value: Any) -> dict[str, str]:
    out = _platform_map("fail_platforms", value, DEFAULT_FAIL_CLASS)
    for platform, cls in out.items():
        if cls not in ERROR_CLASSES:
            raise ValueError(
                f"fail_platforms[{platform}]: unknown error class {cls!r}: "
                f"use one of {', '.join(ERROR_CLASSES)}"
            )
    return out


def _regress_after(value: Any) -> dict[str, float]:
    raw = _platform_map("regress_platforms", value, "0")
    return {p: _non_negative(f"regress_platforms[{p}]", s) for p, s in raw.items()}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _rate(name: str, value: Any) -> float:
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
    return rate


def _non_negative(name: str, value: Any) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


def _optional_seconds(name: str, value: Any) -> float | None:
    """None (or 'none' / '' from a CLI flag) means 'the server-wide default'."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _non_negative(name, value)


def _status(name: str, value: Any, low: int = 100) -> int:
    status = int(value)
    if not low <= status <= 599:
        what = "a 5xx status" if low == 500 else "an HTTP status"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return status


# Faults only one real service has: setting them on the other is a test's mistake.
ONLY_FOR = {
    "refuse_local_media": "postforme",
    "result_delay_seconds": "postforme",
    "duplicate_result_rate": "postforme",
    "stuck_rate": "postforme",
    "plan_limit_rate": "late",
    "pending_rate": "late",
    "pending_platforms": "late",
    "pending_seconds": "late",
    "regress_platforms": "late",
}
_RATES = (
    "error_rate",
    "rate_limit_rate",
    "hang_rate",
    "create_then_error_rate",
    "plan_limit_rate",
    "duplicate_result_rate",
    "stuck_rate",
    "pending_rate",
)
_SECONDS = ("latency_ms", "retry_after", "hang_seconds", "create_delay_seconds", "pending_seconds")
_PLATFORM_SETS = ("missing_platforms", "pending_platforms")


@dataclass(frozen=True)
class FaultSpec:
    """One provider's random faults. Zero everywhere means a healthy provider."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_rate: float = 0.0
    retry_after: float = 1.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    missing_platforms: frozenset[str] = field(default_factory=frozenset)
    # Accepted, then these targets fail: platform -> error class (one of ERROR_CLASSES).
    fail_platforms: dict[str, str] = field(default_factory=dict)
    seed_shapes: bool = False
    # The post is stored, then a 5xx answers (it will publish all the same).
    create_then_error_rate: float = 0.0
    create_then_error_status: int = 502
    # Every stored create answers this many seconds late (0 = at once).
    create_delay_seconds: float = 0.0
    # PostForMe: refuse media URLs on localhost, *.localhost or any IP (400), as the
    # real create does; off so local tests can serve media from loopback.
    refuse_local_media: bool = False
    # PostForMe: seconds until a post's results appear (None = the server's default).
    result_delay_seconds: float | None = None
    # PostForMe: share of successful accounts that first get a failed result (its
    # internal retry then succeeds), so one account has two results.
    duplicate_result_rate: float = 0.0
    # PostForMe: share of posts that stay `processing` for good (no results ever).
    stuck_rate: float = 0.0
    # LATE: 403 permission_error "Plan limit reached: ..." (not a bad key).
    plan_limit_rate: float = 0.0
    # LATE: targets still `pending` when publishNow answers, finished pending_seconds later.
    pending_rate: float = 0.0
    pending_platforms: frozenset[str] = field(default_factory=frozenset)
    pending_seconds: float = 5.0
    # LATE: platform -> seconds after publishing at which the target turns `failed`.
    regress_platforms: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], provider: str | None = None) -> FaultSpec:
        """Validate and coerce (strings are accepted, for CLI flags and query strings);
        with `provider`, also refuse faults the other provider alone has."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s) {unknown}: use {sorted(known)}")
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name in _RATES:
                values[name] = _rate(name, raw)
            elif name in _SECONDS:
                values[name] = _non_negative(name, raw)
            elif name == "result_delay_seconds":
                values[name] = _optional_seconds(name, raw)
            elif name == "error_status":
                values[name] = _status(name, raw)
            elif name == "create_then_error_status":
                values[name] = _status(name, raw, low=500)
            elif name in _PLATFORM_SETS:
                values[name] = _platform_set(raw)
            elif name == "fail_platforms":
                values[name] = _fail_classes(raw)
            elif name == "regress_platforms":
                values[name] = _regress_after(raw)
            else:
                values[name] = _as_bool(raw)
        spec = cls(**values)
        if provider is not None:
            spec.check_for(provider)
        return spec

    def check_for(self, provider: str) -> None:
        """Refuse a fault only the other provider has (the real one never does it)."""
        healthy = FaultSpec()
        for name, owner in ONLY_FOR.items():
            if owner != provider and getattr(self, name) != getattr(healthy, name):
                raise ValueError(f"{name} is a {owner} fault, not a {provider} one")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in _PLATFORM_SETS:
            data[name] = sorted(getattr(self, name))
        return data


def parse_fault_flag(text: str) -> tuple[str, str, str]:
    """Split a CLI flag 'postforme:error_rate=0.3' into (provider, field, value)."""
    provider, sep, assignment = text.partition(":")
    name, eq, value = assignment.partition("=")
    if not sep or not eq or not name.strip():
        raise ValueError(f"bad fault {text!r}: expected PROVIDER:FIELD=VALUE")
    return check_provider(provider), name.strip(), value.strip()
