"""The declarations: every setting's variable, default, unit and reason (`Settings`), and
the checks that join several of them. Parsing the environment is environment.py's job."""


from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024
# LATE's documented caps per social account (providers.md); every platform also 25 an hour.
DEFAULT_ACCOUNT_CAPS = (
    "twitter=50/day;25/hour,instagram=100/day;25/hour,facebook=100/day;25/hour,"
    "threads=250/day;25/hour,pinterest=25/day;25/hour,*=50/day;25/hour")


# Pools a worker may default to: gevent/eventlet would need monkey-patching at start-up,
# which `-P` on the command line (not a setting read after import) must choose.
WORKER_POOLS = ("threads", "prefork", "solo")


class SettingsError(ValueError):
    """A malformed setting; the message starts with the variable's name."""


def _var(env: str, default: Any, unit: str, why: str, *, minimum: float | None = 0.0,
         secret: bool = False) -> Any:
    """A field declared with its variable: `minimum` bounds numbers (None: unbounded)."""
    meta = {"env": env, "unit": unit, "why": why, "minimum": minimum, "secret": secret}
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Typed settings; each field's metadata names its variable and says why it exists."""

    # -- stores -------------------------------------------------------------------------
    database_url: str = _var(
        "DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/socialpost", "DSN",
        "PostgreSQL, the source of truth for posts, targets, attempts and keys", secret=True)
    redis_url: str = _var(
        "REDIS_URL", "redis://127.0.0.1:6379/0", "URL",
        "Redis: Celery's broker and result backend unless those are set apart")
    celery_broker_url: str | None = _var(
        "CELERY_BROKER_URL", None, "URL", "the broker, when not REDIS_URL", secret=True)
    celery_result_backend: str | None = _var(
        "CELERY_RESULT_BACKEND", None, "URL", "the result backend, when not REDIS_URL",
        secret=True)
    db_pool_min: int = _var("SOCIALPOST_DB_POOL_MIN", 1, "connections",
                            "connections a process keeps open")
    db_pool_max: int = _var("SOCIALPOST_DB_POOL_MAX", 4, "connections",
                            "connections one process may open", minimum=1)
    db_pool_timeout: float = _var("SOCIALPOST_DB_POOL_TIMEOUT", 30.0, "s",
                                  "wait for a pooled connection before failing", minimum=0.1)
    db_retry_max: int = _var("SOCIALPOST_DB_RETRY_MAX", 60, "s",
                             "longest wait between a task's retries while PostgreSQL is "
                             "unreachable (they never give up)", minimum=1)
    encryption_key: str | None = _var(
        "ENCRYPTION_KEY", None, "Fernet keys, comma-separated",
        "encrypts stored API keys; the first encrypts, every one decrypts (rotation)",
        secret=True)

    # -- providers ----------------------------------------------------------------------
    postforme_api_key: str | None = _var(
        "POSTFORME_API_KEY", None, "key", "global PostForMe key: step 3 of the chain",
        secret=True)
    late_api_key: str | None = _var(
        "LATE_API_KEY", None, "key", "global LATE key: step 4 of the chain", secret=True)
    postforme_base_url: str = _var("POSTFORME_BASE_URL", "https://api.postforme.dev/v1", "URL",
                                   "PostForMe's API (the sandbox's in tests and the demo)")
    late_base_url: str = _var("LATE_BASE_URL", "https://getlate.dev/api/v1", "URL",
                              "LATE's API (the sandbox's in tests and the demo)")
    connect_timeout: float = _var("SOCIALPOST_CONNECT_TIMEOUT", 5.0, "s",
                                  "to connect; nothing has been sent when it expires",
                                  minimum=0.01)
    postforme_read_timeout: float = _var("POSTFORME_READ_TIMEOUT", 30.0, "s",
                                         "PostForMe answers fast (it publishes later)",
                                         minimum=0.01)
    late_read_timeout: float = _var("LATE_READ_TIMEOUT", 120.0, "s",
                                    "LATE's publishNow publishes inside the request",
                                    minimum=0.01)
    accounts_cache_seconds: float = _var("SOCIALPOST_ACCOUNTS_CACHE_SECONDS", 60.0, "s",
                                         "how long an account list is reused; 0: never")
    client_cache_size: int = _var(
        "SOCIALPOST_CLIENT_CACHE_SIZE", 1000, "entries",
        "provider clients and account lists one process keeps (least recently used "
        "dropped first), so memory stays flat however many users' keys it serves",
        minimum=1)
    client_cache_seconds: float = _var(
        "SOCIALPOST_CLIENT_CACHE_SECONDS", 600.0, "s",
        "a provider client (and the decrypted key it holds) is dropped this long after "
        "it was made, and made again when next needed", minimum=1)
    shared_accounts: bool = _var(
        "SOCIALPOST_SHARED_ACCOUNTS", True, "0/1",
        "an untagged account on a global key is the organisation's, usable by every user; "
        "0 (multi-tenant): no one's")
    late_cdn_wait_seconds: float = _var("LATE_CDN_WAIT_SECONDS", 1.0, "s",
                                        "wait after a LATE upload for its CDN (as the seed)")
    media_max_bytes: int = _var("SOCIALPOST_MEDIA_MAX_BYTES", 100 * MIB, "bytes",
                                "largest media file uploaded through upload_media", minimum=1)
    media_timeout: float = _var("SOCIALPOST_MEDIA_TIMEOUT", 30.0, "s",
                                "to download one media file, in total", minimum=0.01)
    allow_private_urls: bool = _var(
        "SOCIALPOST_ALLOW_PRIVATE_URLS", False, "0/1",
        "development only: allow media on loopback and private addresses")

    # -- delivery policy ----------------------------------------------------------------
    max_transient_attempts: int = _var("SOCIALPOST_MAX_TRANSIENT_ATTEMPTS", 4, "attempts",
                                       "5xx / connection failures on one step before "
                                       "falling over", minimum=1)
    max_rate_limited_attempts: int = _var("SOCIALPOST_MAX_RATE_LIMITED_ATTEMPTS", 6,
                                          "attempts", "429s on one step before falling over",
                                          minimum=1)
    max_ambiguous_attempts: int = _var("SOCIALPOST_MAX_AMBIGUOUS_ATTEMPTS", 5, "attempts",
                                       "lookups of a create whose answer was lost, before "
                                       "`unconfirmed`", minimum=1)
    backoff_base: float = _var("SOCIALPOST_BACKOFF_BASE", 1.0, "s", "first retry's backoff")
    backoff_cap: float = _var("SOCIALPOST_BACKOFF_CAP", 60.0, "s", "longest backoff")
    max_countdown: float = _var("SOCIALPOST_MAX_COUNTDOWN", 300.0, "s",
                                "longest Celery countdown; longer waits go back to "
                                "PostgreSQL as `scheduled`")
    max_crashed_attempts: int = _var(
        "SOCIALPOST_MAX_CRASHED_ATTEMPTS", 5, "attempts",
        "attempts in a row that crash or are cut off before recording (a bug, a hard time "
        "limit) end the post: `unconfirmed` if a send may have happened, else `failed`",
        minimum=1)
    max_past_seconds: float = _var("SOCIALPOST_MAX_PAST_SECONDS", 300.0, "s",
                                   "a scheduled_for this far in the past publishes now; "
                                   "further is refused")

    # -- flow control (providers/pacing.py, providers/circuit.py) -------------------------
    postforme_rate_limits: str = _var(
        "POSTFORME_RATE_LIMITS", "5/second;40/minute", "limits",
        "each PostForMe key's budget, fleet-wide, in the `limits` syntax; `none`: unpaced")
    late_rate_limits: str = _var(
        "LATE_RATE_LIMITS", "60/minute", "limits",
        "each LATE key's budget (60, 600 or 1,200 a minute by account count); `none`: "
        "unpaced")
    background_share: float = _var(
        "SOCIALPOST_BACKGROUND_SHARE", 0.2, "fraction",
        "the most of a key's budget results polling and account refreshes may take")
    rate_limit_max_wait: float = _var(
        "SOCIALPOST_RATE_LIMIT_MAX_WAIT", 900.0, "s",
        "a target waits this long for its step's permit, then falls over to the next step")
    account_caps: str = _var(
        "SOCIALPOST_ACCOUNT_CAPS", DEFAULT_ACCOUNT_CAPS, "platform=limits,...",
        "posts per social account (`*` for the rest); a post over a cap is held until it "
        "fits; `none`: no caps")
    circuit_failures: int = _var(
        "SOCIALPOST_CIRCUIT_FAILURES", 5, "failures",
        "connect failures / 5xx in a row that open a provider's circuit", minimum=1)
    circuit_cooldown: float = _var(
        "SOCIALPOST_CIRCUIT_COOLDOWN", 30.0, "s",
        "an open circuit waits this long before one probe may try", minimum=0.1)

    # -- Celery and beat ----------------------------------------------------------------
    worker_pool: str = _var(
        "SOCIALPOST_WORKER_POOL", "threads", "threads|prefork|solo",
        "a worker's pool when -P is not given: threads overlap the HTTP waits publishing "
        "is made of; prefork for CPU-heavy work")
    task_events: bool = _var(
        "SOCIALPOST_TASK_EVENTS", True, "0/1",
        "workers send task events from their start (Flower's live view); 0 saves ~4 Redis "
        "messages and ~0.8 ms of worker CPU per post, and a Flower still turns them on, "
        "within 5 s of its start or a worker's")
    worker_concurrency: int = _var(
        "SOCIALPOST_WORKER_CONCURRENCY", 8, "tasks",
        "tasks a worker runs at once when -c is not given (threads, or prefork children)",
        minimum=1)
    visibility_timeout: int = _var("SOCIALPOST_VISIBILITY_TIMEOUT", 3600, "s",
                                   "Redis redelivers an unacked message after this",
                                   minimum=1)
    result_expires: int = _var("SOCIALPOST_RESULT_EXPIRES", 86400, "s",
                               "how long acceptance results stay in Redis")
    release_interval: float = _var("SOCIALPOST_RELEASE_INTERVAL", 1.0, "s",
                                   "beat releases due scheduled posts this often",
                                   minimum=0.1)
    release_horizon: float = _var("SOCIALPOST_RELEASE_HORIZON", 2.0, "s",
                                  "a release looks this far ahead (the message waits with "
                                  "an ETA at the post's time)")
    recover_interval: float = _var("SOCIALPOST_RECOVER_INTERVAL", 15.0, "s",
                                   "beat's recovery sweep runs this often", minimum=0.1)
    stall_seconds: float = _var("SOCIALPOST_STALL_SECONDS", 30.0, "s",
                                "a queued post untouched this long has lost its message")
    refresh_interval: float = _var("SOCIALPOST_REFRESH_INTERVAL", 600.0, "s",
                                   "beat re-reads connected accounts this often", minimum=1)
    refresh_page: int = _var("SOCIALPOST_REFRESH_PAGE", 100, "credentials",
                             "one refresh task's share: beat hands the credentials out in "
                             "pages of this many, so no task walks the whole table",
                             minimum=1)
    results_interval: float = _var("SOCIALPOST_RESULTS_INTERVAL", 2.0, "s",
                                   "beat asks the providers about accepted targets this "
                                   "often", minimum=0.1)
    results_settle: float = _var("SOCIALPOST_RESULTS_SETTLE", 0.5, "s",
                                 "wait this long after acceptance before asking")
    results_every: float = _var("SOCIALPOST_RESULTS_EVERY", 2.0, "s",
                                "ask about one accepted target again after this (less a "
                                "quarter of the sweep interval, for the sweeps' jitter)")
    results_batch: int = _var("SOCIALPOST_RESULTS_BATCH", 2000, "targets",
                              "targets one confirmation sweep looks at", minimum=1)
    accepted_deadline: float = _var("SOCIALPOST_ACCEPTED_DEADLINE", 1800.0, "s",
                                    "a target accepted this long without the platform's "
                                    "answer is `unconfirmed` (YouTube/TikTok can be slow)",
                                    minimum=1)
    revision_window: float = _var("SOCIALPOST_REVISION_WINDOW", 900.0, "s",
                                  "a posted LATE target is looked at again this long after "
                                  "(LATE may report a failure after a success)")
    revision_every: float = _var("SOCIALPOST_REVISION_EVERY", 60.0, "s",
                                 "...every this many seconds", minimum=1)

    # -- events and webhooks (db/events.py, tasks/events.py) ------------------------------
    events_interval: float = _var("SOCIALPOST_EVENTS_INTERVAL", 1.0, "s",
                                  "beat moves new post events to webhook deliveries and "
                                  "Celery callbacks this often (the delivery lag's floor)",
                                  minimum=0.1)
    events_batch: int = _var("SOCIALPOST_EVENTS_BATCH", 500, "events",
                             "events (and due deliveries) one dispatcher pass takes",
                             minimum=1)
    events_retention: float = _var("SOCIALPOST_EVENTS_RETENTION", 30 * 86400.0, "s",
                                   "delivered events older than this are pruned, with their "
                                   "delivery log", minimum=60)
    webhook_timeout: float = _var("SOCIALPOST_WEBHOOK_TIMEOUT", 10.0, "s",
                                  "one delivery attempt's whole HTTP call; a slow receiver "
                                  "is retried, never waited for", minimum=0.1)
    webhook_retry_schedule: str = _var(
        "SOCIALPOST_WEBHOOK_RETRY_SCHEDULE", "5,30,120,600,3600", "s, comma-separated",
        "waits before each retry of a failed delivery; the last repeats until "
        "SOCIALPOST_WEBHOOK_RETRY_FOR")
    webhook_retry_for: float = _var("SOCIALPOST_WEBHOOK_RETRY_FOR", 3 * 86400.0, "s",
                                    "a delivery is retried this long, then failed (at least "
                                    "24 h: a receiver down over a weekend night still gets "
                                    "its backlog)", minimum=1)
    webhook_jitter: float = _var("SOCIALPOST_WEBHOOK_JITTER", 0.2, "fraction",
                                 "each retry wait varies by up to this share, so a backlog "
                                 "does not return to a receiver in one burst")
    webhook_disable_failures: int = _var(
        "SOCIALPOST_WEBHOOK_DISABLE_FAILURES", 1000, "attempts",
        "an endpoint failing this many attempts in a row is disabled", minimum=1)
    webhook_disable_after: float = _var(
        "SOCIALPOST_WEBHOOK_DISABLE_AFTER", 3 * 86400.0, "s",
        "an endpoint failing (no success) this long is disabled", minimum=1)

    # -- the seed's synchronous service -------------------------------------------------
    sync_max_wait: float = _var("SOCIALPOST_SYNC_MAX_WAIT", 120.0, "s",
                                "create_post waits this long for retries, then returns")
    sync_results_wait: float = _var("SOCIALPOST_SYNC_RESULTS_WAIT", 10.0, "s",
                                    "create_post waits this long for the platforms' answers")

    # -- processes ----------------------------------------------------------------------
    state_dir: str = _var("SOCIALPOST_STATE_DIR", ".state", "path",
                          "beat's schedule file and the demo's stores live here")
    beat_schedule: str | None = _var("SOCIALPOST_BEAT_SCHEDULE", None, "path",
                                     "beat's schedule file (default <state dir>/"
                                     "celerybeat-schedule)")
    flower_basic_auth: str | None = _var("FLOWER_BASIC_AUTH", None, "user:password",
                                         "Flower refuses to start without it", secret=True)
    postforme_webhook_secret: str | None = _var(
        "POSTFORME_WEBHOOK_SECRET", None, "secret",
        "POST /hooks/postforme takes only this Post-For-Me-Webhook-Secret (or the one "
        "`socialpost hooks register` stored)", secret=True)
    late_webhook_secret: str | None = _var(
        "LATE_WEBHOOK_SECRET", None, "secret",
        "POST /hooks/late takes only bodies signed with this (X-Zernio-Signature), or with "
        "the one `socialpost hooks register` stored; `hooks register` sends it to LATE",
        secret=True)
    metrics_token: str | None = _var(
        "SOCIALPOST_METRICS_TOKEN", None, "token",
        "when set, GET /metrics needs Authorization: Bearer <this>", secret=True)
    worker_metrics_port: int = _var(
        "SOCIALPOST_WORKER_METRICS_PORT", 0, "port",
        "each worker serves its Prometheus metrics here (its pool processes' too); 0: off",
        minimum=0)
    api_max_body_bytes: int = _var(
        "SOCIALPOST_API_MAX_BODY_BYTES", 1 * MIB, "bytes",
        "the HTTP API refuses a larger request body (413) before reading the rest",
        minimum=1024)

    def __post_init__(self) -> None:
        if self.worker_pool not in WORKER_POOLS:
            raise SettingsError(
                f"SOCIALPOST_WORKER_POOL: must be one of {', '.join(WORKER_POOLS)}, "
                f"got {self.worker_pool!r}")
        if self.db_pool_max < self.db_pool_min:
            raise SettingsError(
                f"SOCIALPOST_DB_POOL_MAX: must be >= SOCIALPOST_DB_POOL_MIN "
                f"({self.db_pool_min}), got {self.db_pool_max}")
        for name in ("postforme_base_url", "late_base_url"):
            url = getattr(self, name)
            if not url.startswith(("http://", "https://")):
                raise SettingsError(f"{name.upper()}: must be an http(s) URL, got {url!r}")
            object.__setattr__(self, name, url.rstrip("/"))
        if self.worker_metrics_port > 65535:
            raise SettingsError("SOCIALPOST_WORKER_METRICS_PORT: must be a port between 0 "
                                f"(off) and 65535, got {self.worker_metrics_port}")
        if self.background_share > 1:
            raise SettingsError(
                "SOCIALPOST_BACKGROUND_SHARE: must be between 0 and 1, got "
                f"{self.background_share}")
        if self.webhook_jitter > 1:
            raise SettingsError(
                f"SOCIALPOST_WEBHOOK_JITTER: must be between 0 and 1, got {self.webhook_jitter}")
        self.retry_waits()  # raises SettingsError for a malformed schedule
        from providers.limits_syntax import check_caps, check_limits

        for env, value in (("POSTFORME_RATE_LIMITS", self.postforme_rate_limits),
                           ("LATE_RATE_LIMITS", self.late_rate_limits)):
            problem = check_limits(value)
            if problem:
                raise SettingsError(f"{env}: {problem}")
        problem = check_caps(self.account_caps)
        if problem:
            raise SettingsError(f"SOCIALPOST_ACCOUNT_CAPS: {problem}")

    @property
    def broker_url(self) -> str:
        return self.celery_broker_url or self.redis_url

    @property
    def result_backend(self) -> str:
        return self.celery_result_backend or self.redis_url

    @property
    def beat_schedule_file(self) -> str:
        return self.beat_schedule or os.path.join(self.state_dir, "celerybeat-schedule")

    def retry_waits(self) -> tuple[float, ...]:
        """SOCIALPOST_WEBHOOK_RETRY_SCHEDULE as seconds (each > 0)."""
        waits = []
        for part in self.webhook_retry_schedule.split(","):
            try:
                wait = float(part)
            except ValueError:
                wait = math.nan
            if not (math.isfinite(wait) and wait > 0):
                raise SettingsError(
                    "SOCIALPOST_WEBHOOK_RETRY_SCHEDULE: must be positive seconds separated "
                    f"by commas (e.g. 5,30,120), got {self.webhook_retry_schedule!r}")
            waits.append(wait)
        return tuple(waits)

    def global_keys(self) -> dict[str, str]:
        """provider -> the global key, for the providers that have one."""
        keys = {"postforme": self.postforme_api_key, "late": self.late_api_key}
        return {p: k for p, k in keys.items() if k}
