"""Media facts of threads-attachments.md §2.5: sniffing, the declared/detected rule, sizes and names."""

from __future__ import annotations

import pytest

from core.errors import Invalid
from im.attachments import media
from im.tests.attachments.files import PDF_BYTES, gif_bytes, jpeg_bytes, png_bytes


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (png_bytes(), "image/png"),
        (jpeg_bytes(), "image/jpeg"),
        (b"GIF87a....", "image/gif"),
        (gif_bytes(), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"BM\x00\x00", "image/bmp"),
        (b"\x00\x00\x01\x00\x01\x00", "image/x-icon"),
        (PDF_BYTES, "application/pdf"),
        (b"PK\x03\x04rest", "application/zip"),
        (b"\x1f\x8b\x08\x00", "application/x-gzip"),
        (b"plain words\twith tabs\r\nand \x0c form feeds \x1b escape", "text/plain"),
        (b"", "text/plain"),
        (b"text then \x00 a NUL", "application/octet-stream"),
        (b"text \x1c", "application/octet-stream"),
        (b"x" * 512 + b"\x00", "text/plain"),
    ],
)
def test_sniffing_knows_the_contracts_subset(head, expected):
    assert media.detect_media_type(head) == expected


@pytest.mark.parametrize(
    ("declared", "head", "expected"),
    [
        ("image/png", jpeg_bytes(), "image/jpeg"),
        ("image/png", b"hello, world", "text/plain"),
        ("application/json", b'{"a": 1}', "application/json"),
        ("Application/JSON; charset=utf-8", b"{}", "application/json"),
        (None, PDF_BYTES, "application/pdf"),
        ("not a type", PDF_BYTES, "application/pdf"),
        ("image/svg+xml", b'  \n<?xml version="1.0"?><SVG xmlns="x"></SVG>', "image/svg+xml"),
        ("image/svg+xml", b"just words", "text/plain"),
        ("image/jpeg", b"<svg></svg>", "text/plain"),
        ("text/html", b"<svg></svg>", "text/html"),
    ],
)
def test_declared_types_are_kept_unless_an_image_claim_disagrees_with_the_bytes(declared, head, expected):
    assert media.file_facts(declared_content_type=declared, head=head).media_type == expected


def test_kind_and_pixel_sizes_of_png_gif_and_jpeg():
    assert media.file_facts(declared_content_type="image/png", head=png_bytes(640, 480)) == media.FileFacts(
        media_type="image/png", kind="image", width=640, height=480
    )
    assert media.image_size("image/gif", gif_bytes(5, 4)) == (5, 4)
    assert media.image_size("image/jpeg", jpeg_bytes(7, 9)) == (7, 9)
    pdf = media.file_facts(declared_content_type=None, head=PDF_BYTES)
    assert (pdf.kind, pdf.width, pdf.height) == ("file", None, None)


def test_broken_images_have_no_size():
    assert media.image_size("image/png", b"\x89PNG\r\n\x1a\n") is None
    assert media.image_size("image/jpeg", b"\xff\xd8\xff\xe0\x00") is None
    assert media.image_size("image/gif", b"GIF89a") is None
    assert media.image_size("image/png", png_bytes(0, 2)) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a<b>.txt", "a_b_.txt"),
        ('x:y"z|w?v*u.md', "x_y_z_w_v_u.md"),
        ("tab\there.txt", "tab_here.txt"),
        ("  ..hidden name.. ", "hidden name"),
        ("...", "attachment"),
        ("报告.pdf", "报告.pdf"),
    ],
)
def test_safe_names(name, expected):
    assert media.safe_name(name) == expected


def test_a_long_name_keeps_its_extension_within_160_bytes():
    name = "a" * 296 + ".pdf"
    safe = media.safe_name(name)
    assert len(name.encode()) == 300
    assert safe.endswith(".pdf") and len(safe.encode()) == 160


def test_a_long_name_is_cut_between_code_points_and_trimmed():
    safe = media.safe_name("报" * 100 + ". .txt")
    assert safe.endswith(".txt") and len(safe.encode()) <= 160
    safe.encode().decode("utf-8")
    assert media.safe_name("b" * 200 + "." + "e" * 30) == "b" * 160


@pytest.mark.parametrize("name", [".", "..", "a\\b", "a/b", "nul\x00", "bell\x07.txt", "del\x7f"])
def test_unsafe_original_names_are_refused(name):
    with pytest.raises(Invalid) as refused:
        media.original_name(name)
    assert refused.value.message == f"attachment filename {media.quoted(name)} is unsafe"


def test_original_names_are_trimmed_defaulted_and_limited_to_255_bytes():
    assert media.original_name("  a.txt ") == "a.txt"
    assert media.original_name("   ") == "attachment"
    assert media.original_name("é" * 127) == "é" * 127
    with pytest.raises(Invalid, match=r"^attachment filename is too long$"):
        media.original_name("é" * 128)
