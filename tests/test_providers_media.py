"""Media: URL safety checks, limited downloads, and the presigned upload of both providers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from providers import (
    LateProvider,
    MediaError,
    PostForMeProvider,
    check_media_url,
    clear_accounts_cache,
    fetch_media,
)
from providers.media import content_type_for_url, media_kind


@pytest.fixture(autouse=True)
def _fresh_accounts_cache() -> Iterator[None]:
    clear_accounts_cache()
    yield
    clear_accounts_cache()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/image.jpg",
        "http://localhost:8080/a.png",
        "http://10.1.2.3/a.jpg",
        "https://192.168.0.10/a.jpg",
        "http://172.16.5.4/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.jpg",
        "http://[fe80::1]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://100.64.0.1/a.jpg",
    ],
)
def test_private_addresses_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPOST_ALLOW_PRIVATE_URLS", raising=False)
    problem = check_media_url(url)
    assert problem and "non-public address" in problem
    with pytest.raises(MediaError, match="non-public"):
        fetch_media(url)


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a.jpg", "file:///etc/passwd", "gopher://x/", "data:image/png;base64,AA"],
)
def test_non_http_schemes_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPOST_ALLOW_PRIVATE_URLS", raising=False)
    problem = check_media_url(url)
    assert problem and "http or https" in problem


def test_public_literal_address_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPOST_ALLOW_PRIVATE_URLS", raising=False)
    assert check_media_url("http://93.184.216.34/a.jpg") is None
    assert check_media_url("") == "media URL is empty"
    assert check_media_url("http:///nohost") == "media URL has no host"


def test_private_allowed_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPOST_ALLOW_PRIVATE_URLS", "1")
    assert check_media_url("http://127.0.0.1/a.jpg") is None
    assert check_media_url("ftp://127.0.0.1/a.jpg")  # schemes are checked regardless


def test_fetch_samples(sandbox: Any) -> None:
    jpg = fetch_media(f"{sandbox.url}/_sandbox/sample/image.jpg")
    assert jpg.content_type == "image/jpeg" and jpg.filename == "image.jpg"
    assert jpg.content.startswith(b"\xff\xd8\xff")
    png = fetch_media(f"{sandbox.url}/_sandbox/sample/image.png")
    assert png.content_type == "image/png"
    mp4 = fetch_media(f"{sandbox.url}/_sandbox/sample/video.mp4")
    assert mp4.content_type == "video/mp4" and mp4.filename == "video.mp4"
    assert "size=" in repr(mp4) and "content=" not in repr(mp4)


def test_fetch_wrong_type_and_missing(sandbox: Any) -> None:
    with pytest.raises(MediaError, match="text/plain") as info:
        fetch_media(f"{sandbox.url}/_sandbox/sample/text.txt")
    assert "127.0.0.1" in str(info.value)
    with pytest.raises(MediaError, match="HTTP 404"):
        fetch_media(f"{sandbox.url}/_sandbox/sample/nothing-{uuid.uuid4().hex}.jpg")


def test_fetch_size_limit(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"{sandbox.url}/_sandbox/sample/big.jpg?size=300000"
    assert len(fetch_media(url).content) == 300000
    with pytest.raises(MediaError, match="limit"):
        fetch_media(url, max_bytes=100_000)
    monkeypatch.setenv("SOCIALPOST_MEDIA_MAX_BYTES", "50000")
    with pytest.raises(MediaError, match="limit of 50000|limit is 50000"):
        fetch_media(url)


def test_fetch_time_limit(sandbox: Any) -> None:
    sandbox_url = f"{sandbox.url}/_sandbox/sample/big.jpg?size=5000000"
    # A tiny total budget cannot hold a 5 MB download of a slow-ish stream.
    with pytest.raises(MediaError, match="longer than|failed"):
        fetch_media(sandbox_url, timeout=0.0001)


def test_fetch_refused_host_is_named_not_path(sandbox: Any) -> None:
    with pytest.raises(MediaError) as info:
        fetch_media("http://127.0.0.1:1/secret-token-path.jpg?sig=abcdef", timeout=2)
    assert "secret-token-path" not in str(info.value) and "sig=" not in str(info.value)


def test_media_kinds() -> None:
    assert media_kind("https://c.example/a.JPG?x=1") == "image"
    assert media_kind("https://c.example/a.gif") == "gif"
    assert media_kind("https://c.example/v.mov") == "video"
    assert media_kind("https://c.example/d.pdf") == "document"
    assert media_kind("https://c.example/blob") is None
    assert content_type_for_url("https://c.example/v.m4v") == "video/mp4"


@pytest.mark.parametrize("which", ["postforme", "late"])
@pytest.mark.parametrize(
    ("sample", "content_type"), [("image.jpg", "image/jpeg"), ("video.mp4", "video/mp4")]
)
def test_upload_media_presigned_flow(
    sandbox: Any, which: str, sample: str, content_type: str
) -> None:
    key = f"{which}-media-{uuid.uuid4().hex[:8]}"
    sandbox.register_key(which, key)
    provider = (
        PostForMeProvider(key, sandbox.postforme_url)
        if which == "postforme"
        else LateProvider(key, sandbox.late_url)
    )
    public = provider.upload_media(f"{sandbox.url}/_sandbox/sample/{sample}")
    assert public and public.startswith(f"{sandbox.url}/_sandbox/media/")
    uploaded = fetch_media(public)  # the stored copy is served back with its type
    assert uploaded.content_type == content_type
    assert uploaded.content == fetch_media(f"{sandbox.url}/_sandbox/sample/{sample}").content


@pytest.mark.parametrize("which", ["postforme", "late"])
def test_upload_media_failures_return_none(
    sandbox: Any, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"{which}-media-{uuid.uuid4().hex[:8]}"
    sandbox.register_key(which, key)
    cls = PostForMeProvider if which == "postforme" else LateProvider
    url = sandbox.postforme_url if which == "postforme" else sandbox.late_url
    provider = cls(key, url)
    assert provider.upload_media(f"{sandbox.url}/_sandbox/sample/text.txt") is None
    assert "text/plain" in caplog.text
    assert provider.upload_media("ftp://example.com/a.jpg") is None
    bad = cls("unregistered-key", url)
    assert bad.upload_media(f"{sandbox.url}/_sandbox/sample/image.jpg") is None
    assert "HTTP 401" in caplog.text
