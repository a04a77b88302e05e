"""What a file is (threads-attachments.md §2.5): its media type, kind, pixel size and names.

Everything here reads at most the first kilobytes of a file (`HEAD_BYTES`), never the whole of it.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from dataclasses import dataclass

from core.errors import Invalid

# Sniffing reads 1,024 bytes for SVG; JPEG frame headers may sit after large EXIF blocks, so the size
# reader gets more.
SNIFF_BYTES = 1024
HEAD_BYTES = 64 * 1024

MAX_ORIGINAL_NAME_BYTES = 255
MAX_SAFE_NAME_BYTES = 160
MAX_KEPT_EXTENSION_BYTES = 20
DEFAULT_NAME = "attachment"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b\x08", "application/x-gzip"),
)
_BINARY_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_UNSAFE_NAME_CHARS = frozenset('/\\<>:"|?*')


def quoted(name: str) -> str:
    """A name quoted like a JSON string, as the error texts show it."""
    return json.dumps(name, ensure_ascii=False)


def detect_media_type(head: bytes) -> str:
    """The sniffed type of the first bytes of a file (the contract's subset of Go's DetectContentType)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    if not any(byte in _BINARY_BYTES for byte in head[:512]):
        return "text/plain"
    return "application/octet-stream"


def declared_media_type(content_type: str | None) -> str | None:
    """`type/subtype` of a part's Content-Type, lower-cased without parameters; None when unparsable."""
    if not content_type:
        return None
    essence = content_type.split(";", 1)[0].strip().lower()
    kind, slash, subtype = essence.partition("/")
    if not slash or not _is_token(kind) or not _is_token(subtype):
        return None
    return essence


def _is_token(value: str) -> bool:
    return bool(value) and all(33 <= ord(char) < 127 and char not in '()<>@,;:\\"/[]?=' for char in value)


def _looks_like_svg(head: bytes) -> bool:
    return b"<svg" in head[:SNIFF_BYTES].lstrip().lower()


def media_type_of(*, declared: str | None, head: bytes) -> str:
    """The stored media type: a declared non-image type wins; a declared image type must match the bytes."""
    detected = detect_media_type(head)
    if declared is None:
        return detected
    if not declared.startswith("image/"):
        return declared
    if detected.startswith("image/"):
        return detected
    if declared == "image/svg+xml" and _looks_like_svg(head):
        return declared
    return detected


def kind_of(media_type: str) -> str:
    return "image" if media_type.startswith("image/") else "file"


def image_size(media_type: str, head: bytes) -> tuple[int, int] | None:
    """(width, height) from PNG IHDR, the GIF logical screen or a JPEG SOFn; None when unknown."""
    try:
        if media_type == "image/png" and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
        elif media_type == "image/gif":
            width, height = struct.unpack("<HH", head[6:10])
        elif media_type == "image/jpeg":
            return _jpeg_size(head)
        else:
            return None
    except struct.error:
        return None
    return (width, height) if width and height else None


# SOF0–SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range but carry no frame size.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE_MARKERS = frozenset([0x01, *range(0xD0, 0xD9)])


def _jpeg_size(head: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 4 <= len(head):
        if head[offset] != 0xFF:
            return None
        marker = head[offset + 1]
        if marker == 0xFF:
            offset += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            offset += 2
            continue
        (length,) = struct.unpack(">H", head[offset + 2 : offset + 4])
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", head[offset + 5 : offset + 9])
            return (width, height) if width and height else None
        if marker == 0xDA or length < 2:
            return None
        offset += 2 + length
    return None


def _is_control(char: str) -> bool:
    return unicodedata.category(char) == "Cc"


def original_name(file_name: str) -> str:
    """The trimmed file name, or `attachment` when blank; §2.5 checks 2 and 3 with their texts."""
    name = file_name.strip() or DEFAULT_NAME
    if name in (".", "..") or any(char in "/\\" or _is_control(char) for char in name):
        raise Invalid(f"attachment filename {quoted(name)} is unsafe")
    if len(name.encode()) > MAX_ORIGINAL_NAME_BYTES:
        raise Invalid("attachment filename is too long")
    return name


def _trim_name(name: str) -> str:
    return name.strip().strip(" .")


def _cut_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text` within `limit` UTF-8 bytes, cut between code points."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def safe_name(name: str) -> str:
    """The stored name: unsafe characters become `_`, trimmed, at most 160 bytes with its extension kept."""
    replaced = "".join("_" if char in _UNSAFE_NAME_CHARS or _is_control(char) else char for char in name)
    safe = _trim_name(replaced) or DEFAULT_NAME
    if len(safe.encode()) <= MAX_SAFE_NAME_BYTES:
        return safe
    stem, dot, suffix = safe.rpartition(".")
    extension = dot + suffix
    if not dot or len(extension.encode()) > MAX_KEPT_EXTENSION_BYTES:
        stem, extension = safe, ""
    cut = _trim_name(_cut_utf8(stem, MAX_SAFE_NAME_BYTES - len(extension.encode()))) or DEFAULT_NAME
    return cut + extension


@dataclass(frozen=True)
class FileFacts:
    media_type: str
    kind: str
    width: int | None
    height: int | None


def file_facts(*, declared_content_type: str | None, head: bytes) -> FileFacts:
    """Media type, kind and pixel size of a file from its declared type and first bytes."""
    media_type = media_type_of(declared=declared_media_type(declared_content_type), head=head[:SNIFF_BYTES])
    size = image_size(media_type, head)
    return FileFacts(
        media_type=media_type,
        kind=kind_of(media_type),
        width=size[0] if size else None,
        height=size[1] if size else None,
    )
