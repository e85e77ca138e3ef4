"""An authenticated client of one provider API: the key, the timeouts, the calls.

`ApiClient` holds what every call needs (the key, kept out of any repr or dump; the
base URL; connect and read timeouts) and makes the calls: `_request` sends one,
`_query` makes a read and classifies a failure. The accounts cache, the media upload
and publishing build on it (providers.accounts, providers.media_upload, providers.base).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from providers import circuit, config, pacing
from providers.errors import ProviderCallError
from providers.http import HttpAnswer, TransportError, classify_answer, send
from providers.outcomes import OutcomeKind, PublishOutcome
from providers.redact import clean_error

log = logging.getLogger("providers")

# A permit taken in advance for the calling context's next call (`_admit_next_call`).
_admitted: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "socialpost_admitted", default=None)

# Reads (accounts, lookups) never need LATE's long publish timeout.
QUERY_READ_TIMEOUT_CAP = 30.0


class _Secret:
    """Holds the API key so that no repr, vars() dump or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would write the key somewhere: refuse
        raise TypeError("API keys are not picklable")


def _display_url(url: str) -> str:
    """A base URL without any user:password part, for repr and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


class ApiClient:
    """The key, base URL and timeouts of one client, and its authenticated calls."""

    provider_key: ClassVar[str] = ""  # "postforme" | "late": settings and sandbox names
    display_name: ClassVar[str] = ""  # the seed's provider name: "PostForMe" | "LATE"

    def __init__(
        self,
        api_key: str | None,
        base_url: str | None = None,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> None:
        # A missing key is not an error here: the seed's callers pass os.getenv(...)
        # straight in, and its methods must answer with a result, not raise.
        self._key = _Secret(api_key.strip() if isinstance(api_key, str) else "")
        self.base_url = (base_url or self._default_base_url()).rstrip("/")
        self.connect_timeout = float(
            config.connect_timeout() if connect_timeout is None else connect_timeout
        )
        self.read_timeout = float(
            self._default_read_timeout() if read_timeout is None else read_timeout
        )

    # -- identity ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.display_name

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, base_url={_display_url(self.base_url)!r})"
        )

    __str__ = __repr__

    @property
    def max_request_seconds(self) -> float:
        """The longest one API call of this client can take (connect + read deadline)."""
        return config.request_deadline(self.connect_timeout, self.read_timeout)

    # -- hooks for the two providers -------------------------------------------------
    @classmethod
    def _default_base_url(cls) -> str:
        raise NotImplementedError

    @classmethod
    def _default_read_timeout(cls) -> float:
        raise NotImplementedError

    # -- redaction -------------------------------------------------------------------
    def _secrets(self) -> tuple[str, ...]:
        return (self._key.reveal(),)

    def _clean(self, text: object) -> str:
        return clean_error(text, self._secrets())

    # -- HTTP ------------------------------------------------------------------------
    def _auth_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._key.reveal()}",
            "Accept": "application/json",
        }

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> HttpAnswer:
        """One authenticated API call; raises TransportError when there is no answer
        (kind PACED when the key's budget or the provider's circuit held it back)."""
        all_headers = self._auth_headers()
        all_headers.update(headers or {})
        read = self.read_timeout if read_timeout is None else read_timeout
        key = self._key.reveal()
        trouble = _admitted.get()
        if trouble is None:
            trouble = self._admit(read)
        else:
            _admitted.set(None)  # the permit taken in advance is spent on this call
        try:
            answer = send(
                method,
                f"{self.base_url}{path}",
                session_key=self.base_url,
                connect_timeout=self.connect_timeout,
                read_timeout=read,
                headers=all_headers,
                params=params,
                json_body=json_body,
                secrets=self._secrets(),
            )
        except TransportError as exc:
            if exc.kind is OutcomeKind.TRANSIENT:  # could not connect: the server is down
                circuit.failed(self.base_url)
            raise
        if answer.status >= 500:
            circuit.failed(self.base_url)
        else:
            circuit.answered(self.base_url, trouble)
        pacing.pacer().observe(self.provider_key, key, answer.status, answer.headers)
        log.debug(
            "%s %s %s -> HTTP %s in %.0f ms",
            self.name,
            method,
            path,
            answer.status,
            answer.latency_ms,
        )
        return answer

    def _admit(self, read_timeout: float | None = None) -> bool:
        """Take this call's permit: the provider's circuit, then the key's budget
        (providers.circuit, providers.pacing). Raises TransportError(PACED) without one;
        True when an answer must clear counted trouble (circuit.answered)."""
        read = self.read_timeout if read_timeout is None else read_timeout
        pacer = pacing.pacer()
        key = self._key.reveal()
        try:  # the circuit's and the key's state in one round trip
            blocked, line, is_open, fails = pacer.read_with(
                self.provider_key, key, circuit.admit_keys(self.base_url))
        except RedisError as exc:
            # As each does alone without Redis: the circuit counts as closed, the call goes
            # out unpaced (the provider's own 429 still protects). No second timeout each.
            pacer.unreachable(exc)
            return False
        try:
            trouble = circuit.admit(self.base_url, self.name, self.connect_timeout + read,
                                    read=(is_open, fails))
            pacer.admit(self.provider_key, key, read=(blocked, line))
        except pacing.Denied as denied:
            log.debug("%s: call held back: %s", self.name, denied.reason)
            raise TransportError(OutcomeKind.PACED, denied.reason, 0.0,
                                 retry_after=denied.wait) from None
        return trouble

    def _admit_next_call(self) -> None:
        """Take the next call's permit now (before something that must only happen when
        the call will go out, such as counting a post against an account's cap)."""
        _admitted.set(self._admit())

    @staticmethod
    def _drop_admission() -> None:
        """Forget a permit taken in advance that no call used (nothing was sent)."""
        _admitted.set(None)

    def _no_key_outcome(self) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.CREDENTIAL_REJECTED,
            provider=self.name,
            error=f"No API key configured for {self.name}",
        )

    def _query(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        """A call that creates nothing: returns the 2xx body or raises ProviderCallError.
        A lost answer is TRANSIENT here (asking again is harmless)."""
        if not self._key:
            raise ProviderCallError(self._no_key_outcome())
        try:
            answer = self._request(
                method,
                path,
                params=params,
                json_body=json_body,
                read_timeout=min(self.read_timeout, QUERY_READ_TIMEOUT_CAP),
            )
        except TransportError as exc:
            kind = OutcomeKind.TRANSIENT if exc.kind is OutcomeKind.AMBIGUOUS else exc.kind
            raise ProviderCallError(
                PublishOutcome(
                    kind=kind, provider=self.name, error=exc.message,
                    latency_ms=exc.latency_ms, retry_after=exc.retry_after,
                )
            ) from None
        if not answer.ok:
            raise ProviderCallError(classify_answer(answer, self.name, self._secrets()))
        return answer.body

    def _local_reject(self, message: str) -> PublishOutcome:
        return PublishOutcome(
            kind=OutcomeKind.REJECTED, provider=self.name, error=self._clean(message)
        )
