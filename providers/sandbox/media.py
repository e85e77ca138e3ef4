"""Sample media and uploaded blobs for the sandbox.

Tests need real bytes with the right magic numbers (a JPEG that decoders accept, a
PNG, an MP4 container) without shipping binary fixtures or new dependencies, so the
samples are built here from first principles and cached once per process.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

# An orange 16x16 picture: visibly "an image" when someone opens it by hand.
_RGB = (255, 140, 0)
_SIDE = 16


def _bits_for(value: int) -> tuple[int, int]:
    """JPEG magnitude category and its extra bits for a DC difference."""
    size = abs(value).bit_length()
    extra = value if value >= 0 else (value - 1) & ((1 << size) - 1)
    return size, extra


class _BitWriter:
    """Packs entropy-coded bits MSB first, with the 0xFF byte stuffing JPEG needs."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._acc = 0
        self._n = 0

    def write(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self._acc = (self._acc << 1) | ((value >> shift) & 1)
            self._n += 1
            if self._n == 8:
                self._emit()

    def _emit(self) -> None:
        self.out.append(self._acc)
        if self._acc == 0xFF:
            self.out.append(0x00)
        self._acc = 0
        self._n = 0

    def flush(self) -> bytes:
        if self._n:
            self.write((1 << (8 - self._n)) - 1, 8 - self._n)  # pad with ones
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


@cache
def sample_jpeg() -> bytes:
    """A baseline 16x16 solid-colour JFIF: every block carries only a DC coefficient."""
    r, g, b = _RGB
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    # DC = 8 * mean(level-shifted sample); quantised by 8 it is just the mean.
    dcs = [round(v - 128) for v in (y, cb, cr)]
    app0 = b"JFIF\x00" + bytes([1, 1, 0, 0, 1, 0, 1, 0, 0])
    dqt = bytes([0x00, 8]) + bytes([16] * 63)
    sof = struct.pack(">BHHB", 8, _SIDE, _SIDE, 3) + b"".join(
        bytes([cid, 0x11, 0]) for cid in (1, 2, 3)
    )
    # DC table: categories 0..11, all 4-bit codes (code == category).
    dht_dc = bytes([0x00]) + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12))
    # AC table: only end-of-block, code "0".
    dht_ac = bytes([0x10]) + bytes([1] + [0] * 15) + bytes([0x00])
    sos = bytes([3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0])
    bits = _BitWriter()
    previous = [0, 0, 0]
    for _mcu in range((_SIDE // 8) ** 2):
        for comp, dc in enumerate(dcs):
            size, extra = _bits_for(dc - previous[comp])
            previous[comp] = dc
            bits.write(size, 4)
            if size:
                bits.write(extra, size)
            bits.write(0, 1)  # EOB
    return b"".join(
        [
            b"\xff\xd8",
            _segment(0xE0, app0),
            _segment(0xDB, dqt),
            _segment(0xC0, sof),
            _segment(0xC4, dht_dc),
            _segment(0xC4, dht_ac),
            _segment(0xDA, sos),
            bits.flush(),
            b"\xff\xd9",
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def sample_png() -> bytes:
    """A 16x16 solid-colour RGB PNG."""
    row = b"\x00" + bytes(_RGB) * _SIDE
    ihdr = struct.pack(">IIBBBBB", _SIDE, _SIDE, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(row * _SIDE))
        + _png_chunk(b"IEND", b"")
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload) + 8) + kind + payload


@cache
def sample_mp4() -> bytes:
    """An ISO-BMFF file (ftyp + free + mdat): enough for magic-number and type checks."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", b"social-posting sandbox") + _box(b"mdat", bytes(64))


SAMPLE_TEXT = b"This is plain text, not an image.\n"

# name -> (bytes factory, content type)
SAMPLES: dict[str, tuple[str, str]] = {
    "image.jpg": ("jpeg", "image/jpeg"),
    "image.jpeg": ("jpeg", "image/jpeg"),
    "image.png": ("png", "image/png"),
    "video.mp4": ("mp4", "video/mp4"),
    "text.txt": ("text", "text/plain; charset=utf-8"),
}


def sample_bytes(kind: str) -> bytes:
    if kind == "jpeg":
        return sample_jpeg()
    if kind == "png":
        return sample_png()
    if kind == "mp4":
        return sample_mp4()
    return SAMPLE_TEXT


def big_jpeg_stream(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """Exactly `size` bytes that start like a JPEG and end with EOI, generated lazily so a
    multi-gigabyte size-limit test never holds the body in memory."""
    head = sample_jpeg()[:-2]
    tail = b"\xff\xd9"
    if size <= len(head) + len(tail):
        yield (head + tail)[:size]
        return
    yield head
    remaining = size - len(head) - len(tail)
    zeros = bytes(chunk)
    while remaining > 0:
        step = min(chunk, remaining)
        yield zeros if step == chunk else bytes(step)
        remaining -= step
    yield tail


VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv")

EXTENSION_FOR_TYPE = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "application/pdf": ".pdf",
}


@dataclass
class Blob:
    data: bytes | None
    content_type: str | None
    declared_type: str | None


class MediaStore:
    """Uploaded bytes by token: the presigned-URL flow of both providers lands here."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[str, Blob] = {}

    def reserve(self, token: str, declared_type: str | None) -> None:
        with self._lock:
            self._blobs[token] = Blob(None, None, declared_type)

    def put(self, token: str, data: bytes, content_type: str | None) -> bool:
        with self._lock:
            blob = self._blobs.get(token)
            if blob is None:
                return False
            blob.data = data
            blob.content_type = content_type or blob.declared_type or "application/octet-stream"
            return True

    def get(self, token: str) -> Blob | None:
        with self._lock:
            return self._blobs.get(token)

    def content_type_of(self, token: str) -> str | None:
        blob = self.get(token)
        if blob is None:
            return None
        return blob.content_type or blob.declared_type

    def clear(self) -> None:
        with self._lock:
            self._blobs.clear()
