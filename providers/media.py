"""Safe media download for the presigned-upload flow, and media kinds by extension.

Why: upload_media fetches a URL a caller gave us from inside our network. Without
checks that is a server-side request forgery hole (cloud metadata at 169.254.169.254,
internal services on private addresses) and a memory/time sink (huge or endless
answers). So: http(s) only, public addresses only (unless SOCIALPOST_ALLOW_PRIVATE_URLS=1
for local tests), every redirect hop re-checked, the connected peer re-checked (narrows
DNS rebinding), streamed with a size limit and a total deadline, and an allow-list of
content types the providers accept.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

import requests

from providers import config
from providers.errors import MediaError
from providers.http import classify_exception, peer_address, read_body, session_for

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "FetchedMedia",
    "MediaError",
    "check_media_url",
    "content_type_for_url",
    "fetch_media",
    "media_kind",
]

# Content types the providers' upload endpoints take, with the extension we name files by.
ALLOWED_CONTENT_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
}
_TYPE_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "video/mov": "video/quicktime",
}
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/binary"}

_EXT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".qt": "video/quicktime",
}
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff", ".avif"}
)
GIF_EXTENSIONS = frozenset({".gif"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".qt", ".webm", ".avi", ".mkv", ".mpeg", ".mpg", ".3gp", ".wmv"}
)
DOCUMENT_EXTENSIONS = frozenset({".pdf", ".doc", ".docx", ".ppt", ".pptx"})

MAX_REDIRECTS = 5


def _extension(url: str) -> str:
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return posixpath.splitext(unquote(path))[1].lower()


def media_kind(url: str) -> str | None:
    """ "image", "gif", "video" or "document" from the URL's extension; None if unknown.
    (LATE wants a type per media item; platform rules count images and videos.)"""
    ext = _extension(url)
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in GIF_EXTENSIONS:
        return "gif"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in DOCUMENT_EXTENSIONS:
        return "document"
    return None


def content_type_for_url(url: str) -> str | None:
    """The allowed content type an URL's extension implies, if any."""
    return _EXT_TYPES.get(_extension(url))


@dataclass(frozen=True)
class FetchedMedia:
    """A downloaded media file, ready to PUT to a presigned URL."""

    content: bytes
    content_type: str
    filename: str

    def __repr__(self) -> str:  # never dump megabytes into a log line
        return (
            f"FetchedMedia(filename={self.filename!r}, content_type={self.content_type!r}, "
            f"size={len(self.content)})"
        )


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "(no host)"
    except ValueError:
        return "(malformed URL)"


def _is_public(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or not ip.is_global
    )


def _resolve(host: str, port: int) -> list[str] | None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return None
    return sorted({str(info[4][0]) for info in infos})


def check_media_url(url: str) -> str | None:
    """Why media `url` may not be fetched, or None when it may (`check_public_url`)."""
    return check_public_url(url, "media")


def check_public_url(url: str, what: str) -> str | None:
    """Why `url` (a `what` URL: media, webhook) may not be called, or None when it may:
    the one rule for every URL we fetch or call on someone's say-so (SSRF).

    Refuses non-http(s) schemes and hosts that resolve to private, loopback,
    link-local, reserved or multicast addresses (unless SOCIALPOST_ALLOW_PRIVATE_URLS=1)."""
    if not isinstance(url, str) or not url.strip():
        return f"{what} URL is empty"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return f"{what} URL is malformed"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "none"
        return f"{what} URL must use http or https, got scheme {shown!r}"
    host = parts.hostname
    if not host:
        return f"{what} URL has no host"
    if config.allow_private_urls():
        return None
    addresses = _resolve(host, port or (443 if scheme == "https" else 80))
    if not addresses:
        return f"{what} host {host} does not resolve"
    for address in addresses:
        if not _is_public(address):
            return (
                f"{what} host {host} resolves to a non-public address ({address}): refused "
                "(private, loopback and link-local addresses are not called)"
            )
    return None


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:12] == b"qt  " else "video/mp4"
    return None


def _filename(url: str, content_type: str) -> str:
    try:
        base = posixpath.basename(unquote(urlsplit(url).path))
    except ValueError:
        base = ""
    stem, ext = posixpath.splitext(base)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80] or "media"
    wanted = ALLOWED_CONTENT_TYPES[content_type]
    if _EXT_TYPES.get(ext.lower()) == content_type:
        return stem + ext.lower()
    return stem + wanted


def fetch_media(
    url: str, *, max_bytes: int | None = None, timeout: float | None = None
) -> FetchedMedia:
    """Download `url` within the limits (SOCIALPOST_MEDIA_MAX_BYTES, SOCIALPOST_MEDIA_TIMEOUT).

    Raises MediaError with a message naming the host (never the full URL or a secret)."""
    limit = config.media_max_bytes() if max_bytes is None else max_bytes
    total = config.media_timeout() if timeout is None else timeout
    connect = min(config.connect_timeout(), total)
    deadline = time.monotonic() + total
    current = url.strip() if isinstance(url, str) else url
    for _hop in range(MAX_REDIRECTS + 1):
        problem = check_media_url(current)
        if problem:
            raise MediaError(problem)
        host = _host_of(current)
        left = deadline - time.monotonic()
        if left <= 0:
            raise MediaError(f"media download from {host} took longer than {total:g}s")
        parts = urlsplit(current)
        session = session_for(f"media:{parts.scheme}://{parts.netloc}")
        try:
            resp = session.get(
                current,
                stream=True,
                allow_redirects=False,
                timeout=(min(connect, left), left),
                headers={"Accept": ", ".join(ALLOWED_CONTENT_TYPES)},
            )
        except requests.exceptions.RequestException as exc:
            _kind, message = classify_exception(exc, left)
            raise MediaError(f"media download from {host} failed: {message}") from None
        try:
            peer = peer_address(resp)
            if peer and not config.allow_private_urls() and not _is_public(peer):
                raise MediaError(f"media host {host} connected to a non-public address: refused")
            if resp.is_redirect and resp.headers.get("Location"):
                current = urljoin(current, resp.headers["Location"])
                continue
            if resp.status_code != 200:
                raise MediaError(f"media download from {host} failed: HTTP {resp.status_code}")
            declared = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            declared = _TYPE_ALIASES.get(declared, declared)
            if declared not in ALLOWED_CONTENT_TYPES and declared not in _GENERIC_TYPES:
                raise MediaError(
                    f"media from {host} has content type {declared!r}; allowed: "
                    + ", ".join(ALLOWED_CONTENT_TYPES)
                )
            length = resp.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                raise MediaError(
                    f"media from {host} is {int(length)} bytes; the limit is {limit} bytes"
                )
            try:
                content = read_body(resp, deadline=deadline, read_timeout=total, max_bytes=limit)
            except OverflowError:
                raise MediaError(
                    f"media from {host} is larger than the limit of {limit} bytes"
                ) from None
            except TimeoutError:
                raise MediaError(
                    f"media download from {host} took longer than {total:g}s"
                ) from None
            except Exception as exc:  # connection dropped mid-body, urllib3 errors
                raise MediaError(
                    f"media download from {host} failed while reading: {type(exc).__name__}"
                ) from None
        finally:
            resp.close()
        content_type = declared
        if content_type in _GENERIC_TYPES:
            content_type = _sniff(content[:16]) or content_type_for_url(current) or ""
            if content_type not in ALLOWED_CONTENT_TYPES:
                raise MediaError(
                    f"media from {host} is not a supported image or video; allowed: "
                    + ", ".join(ALLOWED_CONTENT_TYPES)
                )
        if not content:
            raise MediaError(f"media from {host} is empty")
        return FetchedMedia(content, content_type, _filename(current, content_type))
    raise MediaError(f"media download from {_host_of(url)}: more than {MAX_REDIRECTS} redirects")
