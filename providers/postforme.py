"""PostForMe client (primary provider): https://api.postforme.dev/v1.

PostForMe publishes asynchronously: a create answers 201 with the post in `processing`,
and per-platform results arrive later (`fetch_results`). Its only idempotency handle is
`external_id`, which carries our post id; `find_post` looks a post up by it so an
ambiguous create can be reconciled instead of resent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from providers import config, verdicts
from providers.base import HttpProvider, as_dict, first_str, log, unwrap
from providers.content_wire import postforme_configurations, postforme_platform
from providers.errors import ProviderCallError
from providers.http import classify_answer, parse_time, utc_iso
from providers.media import FetchedMedia
from providers.models import AccountInfo
from providers.outcomes import OutcomeKind, PublishOutcome, PublishRequest, TargetResult
from providers.ownership import user_tag
from providers.platforms import normalize_platform

# PostForMe's own platform names where they differ from the seed's.
_FROM_POSTFORME = {"x": "twitter", "tiktok_business": "tiktok"}
_PAGE = 100
_MAX_PAGES = 20


def _seed_platform(name: object) -> str:
    """The seed's name for a platform PostForMe reports ("x" -> "twitter")."""
    raw = str(name or "").strip().lower()
    return _FROM_POSTFORME.get(raw) or normalize_platform(raw) or raw


class PostForMeProvider(HttpProvider):
    """The seed's PostForMeProvider, plus classified outcomes for the worker."""

    provider_key = "postforme"
    display_name = "PostForMe"

    @classmethod
    def _default_base_url(cls) -> str:
        return config.postforme_base_url()

    @classmethod
    def _default_read_timeout(cls) -> float:
        return config.postforme_read_timeout()

    # -- accounts --------------------------------------------------------------------
    def _all_pages(self, path: str, params: dict[str, Any]) -> tuple[list[Any], bool]:
        """Every item of a paged list (offset and limit, `meta.next` while more follow),
        up to _MAX_PAGES pages; (the items, whether that was all of them)."""
        items: list[Any] = []
        for _ in range(_MAX_PAGES):
            body = self._query("GET", path, params={**params, "limit": str(_PAGE),
                                                    "offset": str(len(items))})
            page = body.get("data") if isinstance(body, dict) else body
            page = page if isinstance(page, list) else []
            items += page
            meta = as_dict(body.get("meta")) if isinstance(body, dict) else {}
            if not page or not meta.get("next"):
                return items, True
        return items, False

    def _fetch_accounts(self) -> list[AccountInfo]:
        items, _ = self._all_pages("/social-accounts", {})
        return [a for a in map(self._account, items) if a is not None]

    @staticmethod
    def _account(item: object) -> AccountInfo | None:
        data = as_dict(item)
        account_id = first_str(data.get("id"))
        if account_id is None:
            return None
        if str(data.get("status") or "").lower() == "disconnected":
            return None
        return AccountInfo(
            id=account_id,
            platform=_seed_platform(data.get("platform")),
            username=first_str(data.get("username"), data.get("name")) or "",
            profile_id=None,
            owner=user_tag(data.get("external_id")),
        )

    # -- publishing --------------------------------------------------------------------
    def _create(self, request: PublishRequest, chosen: dict[str, AccountInfo]) -> PublishOutcome:
        payload: dict[str, Any] = {
            "caption": request.content,
            "social_accounts": [account.id for account in chosen.values()],
        }
        if request.media_urls:
            payload["media"] = [{"url": url} for url in request.media_urls]
        if request.scheduled_for is not None:
            payload["scheduled_at"] = utc_iso(request.scheduled_for)
        if request.idempotency_key:
            payload["external_id"] = request.idempotency_key
        configs = postforme_configurations(list(chosen), request.overrides,
                                           request.platform_options)
        if configs:
            payload["platform_configurations"] = configs

        answer = self._send_create("/social-posts", payload)
        if isinstance(answer, PublishOutcome):
            return answer
        if not answer.ok:
            return classify_answer(answer, self.name, self._secrets(), create=True)
        post = unwrap(answer.body)
        return PublishOutcome(
            kind=OutcomeKind.PUBLISHED,
            provider=self.name,
            http_status=answer.status,
            provider_post_id=first_str(post.get("id")),
            provider_status=first_str(post.get("status")),
            # Results are asynchronous: accepted for now, fetch_results tells later.
            targets={p: TargetResult(platform=p, success=None) for p in chosen},
            latency_ms=answer.latency_ms,
        )

    def find_post(self, idempotency_key: str) -> PublishOutcome | None:
        """The post created with external_id == `idempotency_key`, as a PUBLISHED outcome,
        or None when there is none. Raises ProviderCallError if the lookup fails."""
        body = self._query(
            "GET", "/social-posts", params={"external_id": idempotency_key, "limit": "10"}
        )
        items = body.get("data") if isinstance(body, dict) else body
        for item in items if isinstance(items, list) else []:
            post = as_dict(item)
            found = post.get("external_id")
            if found is not None and found != idempotency_key:
                continue  # a server that ignored the filter
            post_id = first_str(post.get("id"))
            if post_id is None:
                continue
            return PublishOutcome(
                kind=OutcomeKind.PUBLISHED,
                provider=self.name,
                http_status=200,
                provider_post_id=post_id,
                provider_status=first_str(post.get("status")),
                targets={p: TargetResult(platform=p) for p in self._post_platforms(post)},
            )
        return None

    def _post_platforms(self, post: dict[str, Any]) -> list[str]:
        platforms: list[str] = []
        ids: list[str] = []
        for entry in post.get("social_accounts") or []:
            if isinstance(entry, dict) and entry.get("platform"):
                platforms.append(_seed_platform(entry["platform"]))
            elif isinstance(entry, str):
                ids.append(entry)
        if ids:
            by_id = self._platforms_by_account()
            platforms.extend(by_id[i] for i in ids if i in by_id)
        return list(dict.fromkeys(platforms))

    def _platforms_by_account(self, refresh: bool = False) -> dict[str, str]:
        if refresh:
            self.invalidate_accounts()
        return {a.id: a.platform for a in self.accounts()}

    def fetch_results(self, provider_post_id: str) -> dict[str, TargetResult]:
        """Per-platform results of a post (empty while it is still processing).
        Raises ProviderCallError."""
        return self.fetch_results_many([provider_post_id]).get(provider_post_id, {})

    def fetch_results_many(
        self, provider_post_ids: list[str]
    ) -> dict[str, dict[str, TargetResult]]:
        """Results of several posts (the list filter repeats `post_id`), every page of
        them: an account PostForMe retried has two results, so a page cut short could
        hold a failure whose retry's success is on the next page, and a failure taken for
        final falls over to another provider, which would post it twice. Provider post id
        -> platform -> result. Raises ProviderCallError."""
        items, whole = self._all_pages("/social-post-results",
                                       {"post_id": list(provider_post_ids)})
        if not whole:  # never seen whole: judge none of it rather than part
            raise ProviderCallError(PublishOutcome(
                kind=OutcomeKind.TRANSIENT, provider=self.name,
                error=f"more than {_MAX_PAGES} pages of results; asked again later"))
        results = [as_dict(i) for i in items]
        by_id: dict[str, str] | None = None
        out: dict[str, dict[str, TargetResult]] = {}
        single = provider_post_ids[0] if len(provider_post_ids) == 1 else None
        for result in results:
            post_id = first_str(result.get("post_id")) or single
            if post_id is None:
                continue
            account_id = first_str(result.get("social_account_id"))
            platform: str | None = None
            if account_id is not None:
                if by_id is None:
                    by_id = self._platforms_by_account()
                if account_id not in by_id:
                    by_id = self._platforms_by_account(refresh=True)
                platform = by_id.get(account_id)
            if platform is None and result.get("platform"):
                platform = _seed_platform(result["platform"])
            if platform is None:
                continue
            data = as_dict(result.get("platform_data"))
            success = result.get("success")
            error = result.get("error")
            found = TargetResult(
                platform=platform,
                success=success if isinstance(success, bool) else None,
                platform_post_id=first_str(data.get("id")),
                platform_post_url=first_str(data.get("url")),
                error=self._clean(error) if error else None,
                error_class=verdicts.classify(str(error or "")) if success is False else None,
                published_at=parse_time(result.get("published_at") or data.get("published_at")
                                        or result.get("created_at")) if success else None,
            )
            # PostForMe retries a platform once, so an account may have two results: any
            # success wins, else the newest (they come oldest first).
            kept = out.setdefault(post_id, {}).get(platform)
            if kept is None or kept.success is not True:
                out[post_id][platform] = found
        return out

    def register_webhook(self, url: str, event_types: list[str]) -> dict[str, Any]:
        """POST /webhooks: PostForMe sends `event_types` to `url` from now on. Returns
        {id, url, secret}: the secret it made, sent back raw with every event. Raises
        ProviderCallError."""
        body = unwrap(self._query("POST", "/webhooks",
                                  json_body={"url": url, "event_types": event_types}))
        secret = first_str(body.get("secret"))
        if secret is None:
            raise ValueError("PostForMe answered the webhook registration without a secret")
        return {"id": first_str(body.get("id")), "url": url, "secret": secret}

    def delete_webhook(self, webhook_id: str) -> None:
        """DELETE /webhooks/{id}: PostForMe stops sending to that endpoint. Raises
        ProviderCallError (404 when it is already gone)."""
        self._query("DELETE", f"/webhooks/{quote(webhook_id, safe='')}")

    def post_status(self, provider_post_id: str) -> str | None:
        """The post's status (draft | scheduled | processing | processed): its results are
        final once `processed`. Raises ProviderCallError."""
        body = unwrap(self._query("GET", f"/social-posts/{provider_post_id}"))
        return first_str(body.get("status"))

    # -- OAuth -------------------------------------------------------------------------
    def get_oauth_url(
        self, platform: str, redirect_url: str, *, user_id: str | None = None,
        shared_key: bool = False,
    ) -> str | None:
        """Seed API: the URL where a user connects `platform`, or None on failure. With
        `user_id` the account is tagged `external_id` = user id, on any key: on a shared
        key that is what makes it this user's. `redirect_url_override` is the real
        API's name for the seed's `redirect_url`; both are sent."""
        name = normalize_platform(platform)
        if name is None:
            log.warning("%s: OAuth URL for unknown platform %r", self.name, platform)
            return None
        payload: dict[str, Any] = {
            "platform": postforme_platform(name),
            "redirect_url": redirect_url,
            "redirect_url_override": redirect_url,
        }
        if user_id:
            payload["external_id"] = user_id
        try:
            body = self._query("POST", "/social-accounts/auth-url", json_body=payload)
        except ProviderCallError as exc:
            log.warning("%s: OAuth URL failed: %s", self.name, self._clean(exc))
            return None
        except Exception as exc:  # the seed API never raises
            log.warning("%s: OAuth URL failed: %s", self.name, self._clean(repr(exc)))
            return None
        outer = as_dict(body)
        inner = as_dict(outer.get("data"))
        return first_str(outer.get("url"), inner.get("auth_url"), inner.get("url"))

    # -- media -------------------------------------------------------------------------
    def _presign(self, media: FetchedMedia) -> tuple[str, str]:
        body = unwrap(
            self._query(
                "POST", "/media/create-upload-url", json_body={"content_type": media.content_type}
            )
        )
        upload_url = first_str(body.get("upload_url"), body.get("uploadUrl"))
        media_url = first_str(body.get("media_url"), body.get("mediaUrl"))
        if not upload_url or not media_url:
            raise ProviderCallError(
                self._local_reject("media upload: no upload_url/media_url in the answer")
            )
        return upload_url, media_url
