"""LATE client (fallback provider): https://getlate.dev/api/v1 (now also zernio.com).

LATE publishes inside the request when `publishNow` is true (without it, or
`scheduledFor`, a post stays a draft forever), so answers can take minutes: its read
timeout is long. Per-platform ids and urls come back in the answer.

Reconciling an ambiguous create: LATE has no lookup by request id, so `find_post`
returns None. Resending with the same idempotency key is safe instead: LATE answers a
repeated `x-request-id` within 300 s with the existing post (200), and the same content
to the same account within 24 h with 409 and the existing post id (DUPLICATE).
"""

from __future__ import annotations

import time
from typing import Any

from providers import config, verdicts
from providers.base import HttpProvider, as_dict, first_str, log
from providers.content_wire import late_media, late_target
from providers.errors import ProviderCallError
from providers.http import classify_answer, http_error, parse_time, utc_iso
from providers.media import FetchedMedia
from providers.models import AccountInfo
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult
from providers.ownership import uuid_tag
from providers.platforms import normalize_platform

# LATE's target statuses; pending / processing / uploading are not known yet (None).
_TARGET_SUCCESS = {"published": True, "failed": False, "cancelled": False}


def _id_of(value: object) -> str | None:
    """LATE ids are strings, or populated objects with an `_id`."""
    if isinstance(value, dict):
        return first_str(value.get("_id"), value.get("id"))
    return first_str(value)


def _as_options(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


class LateProvider(HttpProvider):
    """The seed's LateProvider, plus classified outcomes for the worker."""

    provider_key = "late"
    display_name = "LATE"
    dedupes_resends = True  # x-request-id / Idempotency-Key replays; a 409 names the post

    @classmethod
    def _default_base_url(cls) -> str:
        return config.late_base_url()

    @classmethod
    def _default_read_timeout(cls) -> float:
        return config.late_read_timeout()

    # -- accounts --------------------------------------------------------------------
    def _fetch_accounts(self) -> list[AccountInfo]:
        """Every account of the key, each with the owner its profile names (a profile
        named by a user id is that user's; others, such as "Default", the key's own)."""
        owners = {pid: uuid_tag(name) for pid, name in self._profiles().items()}
        body = self._query("GET", "/accounts")
        items = body.get("accounts", body.get("data")) if isinstance(body, dict) else body
        accounts: list[AccountInfo] = []
        for item in items if isinstance(items, list) else []:
            data = as_dict(item)
            account_id = _id_of(data.get("_id")) or _id_of(data.get("id"))
            if account_id is None:
                continue
            if data.get("isActive") is False or data.get("needsReconnection") is True:
                continue
            raw = str(data.get("platform") or "").strip().lower()
            accounts.append(
                AccountInfo(
                    id=account_id,
                    platform=normalize_platform(raw) or raw,
                    username=first_str(data.get("username"), data.get("displayName")) or "",
                    profile_id=_id_of(data.get("profileId")),
                    owner=owners.get(_id_of(data.get("profileId")) or ""),
                )
            )
        return accounts

    # -- publishing --------------------------------------------------------------------
    def _create(self, request: PublishRequest, chosen: dict[str, AccountInfo]) -> PublishOutcome:
        options = {normalize_platform(k): v for k, v in (request.platform_options or {}).items()}
        targets: list[dict[str, Any]] = []
        for platform, account in chosen.items():
            entry: dict[str, Any] = {"platform": platform, "accountId": account.id}
            if account.profile_id:
                entry["profileId"] = account.profile_id
            entry.update(late_target(platform, request.overrides.get(platform),
                                     _as_options(options.get(platform))))
            targets.append(entry)
        payload: dict[str, Any] = {"content": request.content, "platforms": targets}
        if request.media_urls:
            payload["mediaItems"] = late_media(list(request.media_urls))
        if request.scheduled_for is None:
            payload["publishNow"] = True
        else:
            payload["scheduledFor"] = utc_iso(request.scheduled_for)
            payload["timezone"] = "UTC"
        key = request.idempotency_key
        headers = {"x-request-id": key, "Idempotency-Key": key} if key else None

        answer = self._send_create("/posts", payload, headers)
        if isinstance(answer, PublishOutcome):
            return answer
        if answer.status == 409:
            details = as_dict(as_dict(answer.body).get("details"))
            return PublishOutcome(
                kind=OutcomeKind.DUPLICATE,
                provider=self.name,
                http_status=409,
                error=http_error(409, answer.body, answer.text, self._secrets()),
                existing_post_id=first_str(details.get("existingPostId")),
                latency_ms=answer.latency_ms,
            )
        if not answer.ok:
            return classify_answer(answer, self.name, self._secrets(), create=True)
        body = as_dict(answer.body)
        post = as_dict(body.get("post")) or as_dict(body.get("data")) or body
        by_account = {account.id: platform for platform, account in chosen.items()}
        results = self._targets(post, by_account)
        for platform in chosen:  # the seed's answer may omit status: accepted for now
            results.setdefault(platform, TargetResult(platform=platform))
        return PublishOutcome(
            kind=OutcomeKind.PUBLISHED,
            provider=self.name,
            http_status=answer.status,
            provider_post_id=_id_of(post.get("_id")) or _id_of(post.get("id")),
            provider_status=first_str(post.get("status")),
            targets=results,
            latency_ms=answer.latency_ms,
        )

    def _targets(self, post: dict[str, Any], by_account: dict[str, str]) -> dict[str, TargetResult]:
        """Per-platform results from a LATE post's `platforms` list."""
        results: dict[str, TargetResult] = {}
        for item in post.get("platforms") or []:
            target = as_dict(item)
            name = by_account.get(_id_of(target.get("accountId")) or "") or normalize_platform(
                target.get("platform")
            )
            if name is None:
                continue
            status = str(target.get("status") or "").lower()
            success = _TARGET_SUCCESS.get(status)
            error = target.get("errorMessage") or target.get("error")
            if status == "cancelled" and not error:
                error = "cancelled at LATE"
            results[name] = TargetResult(
                platform=name,
                success=success,
                platform_post_id=first_str(target.get("platformPostId")),
                platform_post_url=first_str(target.get("platformPostUrl"),
                                            target.get("publishedUrl")),
                error=self._clean(error) if error else None,
                error_class=verdicts.classify(
                    str(error or ""), first_str(target.get("errorCategory")),
                    first_str(target.get("errorSource"))) if success is False else None,
                published_at=parse_time(target.get("publishedAt")) if success else None,
            )
        return results

    def fetch_results(self, provider_post_id: str) -> dict[str, TargetResult]:
        """Per-platform results of a post (GET /posts/{id}); useful for scheduled posts.
        Raises ProviderCallError."""
        body = as_dict(self._query("GET", f"/posts/{provider_post_id}"))
        post = as_dict(body.get("post")) or as_dict(body.get("data")) or body
        return self._targets(post, {})

    def register_webhook(self, name: str, url: str, secret: str,
                         events: list[str]) -> dict[str, Any]:
        """POST /webhooks/settings: LATE signs `events` sent to `url` with `secret`
        (X-Zernio-Signature) from now on. Returns {id, url}. Raises ProviderCallError."""
        body = as_dict(self._query("POST", "/webhooks/settings", json_body={
            "name": name, "url": url, "secret": secret, "events": events}))
        hook = as_dict(body.get("webhook")) or body
        return {"id": _id_of(hook.get("_id")) or _id_of(hook.get("id")), "url": url}

    def find_post(self, idempotency_key: str) -> PublishOutcome | None:
        """Always None: LATE cannot look posts up by request id. Resending with the same
        key is the safe reconciliation (x-request-id replay within 300 s, 409 after)."""
        return None

    # -- OAuth -------------------------------------------------------------------------
    def get_connect_url(
        self, platform: str, redirect_url: str, profile_id: str | None = None
    ) -> str | None:
        """The URL where a user connects `platform` (LATE's GET /connect/{platform}),
        or None on failure. Without `profile_id` the key's default profile is used."""
        name = normalize_platform(platform)
        if name is None:
            log.warning("%s: connect URL for unknown platform %r", self.name, platform)
            return None
        try:
            params = {"redirect_url": redirect_url}
            profile = profile_id or self._default_profile()
            if profile:
                params["profileId"] = profile
            body = as_dict(self._query("GET", f"/connect/{name}", params=params))
        except ProviderCallError as exc:
            log.warning("%s: connect URL failed: %s", self.name, self._clean(exc))
            return None
        except Exception as exc:  # the seed API never raises
            log.warning("%s: connect URL failed: %s", self.name, self._clean(repr(exc)))
            return None
        inner = as_dict(body.get("data"))
        return first_str(
            body.get("authUrl"), body.get("url"), inner.get("auth_url"), inner.get("authUrl")
        )

    def get_oauth_url(
        self, platform: str, redirect_url: str, *, user_id: str | None = None,
        shared_key: bool = False,
    ) -> str | None:
        """The seed service's name for the connect URL. On a shared key with `user_id`,
        the account goes into the user's own profile (named by the user id, created on
        first connect), which is what makes it theirs; else the default profile."""
        profile: str | None = None
        if user_id and shared_key:
            try:
                profile = self.profile_for(user_id)
            except ProviderCallError as exc:
                log.warning("%s: connect URL failed: %s", self.name, self._clean(exc))
                return None
        return self.get_connect_url(platform, redirect_url, profile)

    def _profiles(self) -> dict[str, str]:
        """Profile id -> name, in LATE's order; {} where the API has no profiles route
        (the seed's shape). Raises ProviderCallError on other failures."""
        try:
            body = as_dict(self._query("GET", "/profiles"))
        except ProviderCallError as exc:
            if exc.outcome.http_status == 404:
                return {}
            raise
        items = body.get("profiles", body.get("data"))
        out: dict[str, str] = {}
        for item in items if isinstance(items, list) else []:
            data = as_dict(item)
            pid = _id_of(data.get("_id")) or _id_of(data.get("id"))
            if pid:
                out[pid] = str(data.get("name") or "")
        return out

    def profile_for(self, user_id: str) -> str:
        """The id of the user's profile on this key (named by the user id), created
        when missing. Of several so named (two first connects racing), the first
        listed, always: every one of them counts as the user's anyway."""
        tag = uuid_tag(user_id) or user_id
        for pid, name in self._profiles().items():
            if (uuid_tag(name) or name) == tag:
                return pid
        body = as_dict(self._query(
            "POST", "/profiles",
            json_body={"name": tag, "description": "social-posting user (accounts per user)"},
        ))
        created = as_dict(body.get("profile")) or as_dict(body.get("data")) or body
        new_id = _id_of(created.get("_id")) or _id_of(created.get("id"))
        if not new_id:
            raise ProviderCallError(self._local_reject("POST /profiles: no profile id answered"))
        self.invalidate_accounts()
        return new_id

    def _default_profile(self) -> str | None:
        try:
            body = as_dict(self._query("GET", "/profiles"))
        except ProviderCallError:
            return None
        profiles = [as_dict(p) for p in body.get("profiles") or [] if isinstance(p, dict)]
        default = next((p for p in profiles if p.get("isDefault")), None)
        chosen = default or (profiles[0] if profiles else {})
        return _id_of(chosen.get("_id"))

    # -- media -------------------------------------------------------------------------
    def _presign(self, media: FetchedMedia) -> tuple[str, str]:
        body = as_dict(
            self._query(
                "POST",
                "/media/presign",
                json_body={"filename": media.filename, "contentType": media.content_type},
            )
        )
        inner = as_dict(body.get("data")) or body
        upload_url = first_str(inner.get("uploadUrl"), inner.get("upload_url"))
        public_url = first_str(inner.get("publicUrl"), inner.get("public_url"))
        if not upload_url or not public_url:
            raise ProviderCallError(
                self._local_reject("media upload: no uploadUrl/publicUrl in the answer")
            )
        return upload_url, public_url

    def _after_upload(self) -> None:
        """The seed waits for LATE's CDN to serve the new file (LATE_CDN_WAIT_SECONDS)."""
        wait = config.late_cdn_wait_seconds()
        if wait > 0:
            time.sleep(wait)
