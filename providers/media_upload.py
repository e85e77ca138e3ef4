"""The presigned media upload of a provider client: fetch the source safely
(providers.media), ask the provider for an upload slot (`_presign`), PUT the bytes there
without our key, and hand back the public URL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from urllib.parse import urlsplit

from providers import config
from providers.client import ApiClient, log
from providers.errors import MediaError, ProviderCallError
from providers.http import TransportError, classify_answer, send
from providers.media import FetchedMedia, fetch_media
from providers.outcomes import PublishOutcome


class PresignedUpload(ApiClient, ABC):
    """Media upload for a client; the provider supplies `_presign` (and `_after_upload`)."""

    @abstractmethod
    def _presign(self, media: FetchedMedia) -> tuple[str, str]:
        """(upload URL, public URL) for one file; raises ProviderCallError."""

    def _after_upload(self) -> None:
        """Hook: LATE waits for its CDN."""

    def upload(self, source_url: str) -> str:
        """Fetch `source_url`, upload it by the presigned flow, return the public URL.
        Raises MediaError (the source) or ProviderCallError (the provider)."""
        if not self._key:
            raise ProviderCallError(self._no_key_outcome())
        media = fetch_media(source_url)
        upload_url, public_url = self._presign(media)
        self._put(upload_url, media)
        self._after_upload()
        return public_url

    def upload_media(self, image_url: str) -> str | None:
        """Seed API: the public URL of the uploaded copy, or None (a warning is logged)."""
        try:
            return self.upload(image_url)
        except (MediaError, ProviderCallError) as exc:
            log.warning("%s: media upload failed: %s", self.name, self._clean(exc))
        except Exception as exc:  # the seed API never raises
            log.warning("%s: media upload failed: %s", self.name, self._clean(repr(exc)))
        return None

    def _put(self, upload_url: str, media: FetchedMedia) -> None:
        """PUT the bytes to the presigned URL, without our Authorization header (the
        upload host is storage, not the API: it must never see the key)."""
        parts = urlsplit(upload_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderCallError(self._local_reject("provider returned an invalid upload URL"))
        try:
            answer = send(
                "PUT",
                upload_url,
                session_key=f"upload:{parts.scheme}://{parts.netloc}",
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout + config.media_timeout(),
                headers={"Content-Type": media.content_type},
                data=media.content,
                secrets=self._secrets(),
            )
        except TransportError as exc:
            raise ProviderCallError(
                PublishOutcome(
                    kind=exc.kind, provider=self.name, error=f"media upload: {exc.message}"
                )
            ) from None
        if not answer.ok:
            outcome = classify_answer(answer, self.name, self._secrets())
            raise ProviderCallError(replace(outcome, error=f"media upload: {outcome.error}"))
