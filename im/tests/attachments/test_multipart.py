"""Multipart message bodies (threads-attachments.md §2.4): check order and texts, streamed files."""

from __future__ import annotations

import hashlib

import pytest
from django.test import RequestFactory

from core.http import ApiError
from im.attachments import multipart
from im.attachments.multipart import (
    MAX_FILE_BYTES,
    MAX_MESSAGE_BYTES,
    MULTIPART_BODY_LIMIT,
    check_attachment_limits,
    discard_uploads,
    is_multipart,
    parse_message_multipart,
)
from im.tests.attachments.multipart_bodies import (
    BOUNDARY,
    CONTENT_TYPE,
    field_part,
    file_part,
    multipart_body,
)

PAYLOAD = {"room_id": "room-1", "sender_id": "u-admin", "content": ""}


def _request(body: bytes, content_type: str = CONTENT_TYPE, **extra):
    return RequestFactory().post("/api/v1/messages", data=body, content_type=content_type, **extra)


def _parse(body: bytes, content_type: str = CONTENT_TYPE, **extra) -> multipart.MessageUpload:
    request = _request(body, content_type, **extra)
    return parse_message_multipart(request, request)


def _refusal(body: bytes, **extra) -> tuple[int, str]:
    with pytest.raises(ApiError) as refused:
        upload = _parse(body, **extra)
        check_attachment_limits(upload)
    return refused.value.status, refused.value.message


def test_only_form_data_is_multipart():
    assert is_multipart("Multipart/Form-Data; boundary=x")
    assert not is_multipart("multipart/mixed; boundary=x")
    assert not is_multipart("application/json")


def test_payload_and_files_in_order_files_parts_first():
    body = (
        field_part("payload", '{"room_id": "room-1", "content": "hi"}')
        + file_part("file", "third.txt", b"3")
        + file_part("files", "first.txt", b"1", "text/plain")
        + file_part("other", "ignored.txt", b"x")
        + file_part("files", "second.bin", b"22")
        + f"--{BOUNDARY}--\r\n".encode()
    )
    upload = _parse(body)
    check_attachment_limits(upload)

    assert upload.payload == {"room_id": "room-1", "content": "hi"}
    assert [(incoming.name, incoming.size) for incoming in upload.files] == [
        ("first.txt", 1),
        ("second.bin", 2),
        ("third.txt", 1),
    ]
    assert upload.files[0].content_type == "text/plain" and upload.files[1].content_type is None
    assert upload.files[1].sha256 == hashlib.sha256(b"22").hexdigest()
    assert all(incoming.temp_path.read_bytes() == incoming.head for incoming in upload.files)
    discard_uploads(upload.files)
    assert all(incoming.temp_path is None for incoming in upload.files)


def test_a_body_announced_over_the_limit_is_refused_first():
    assert _refusal(b"", CONTENT_LENGTH=str(MULTIPART_BODY_LIMIT + 1)) == (413, "request body too large")


def test_a_body_longer_than_it_announced_is_counted(monkeypatch):
    monkeypatch.setattr(multipart, "MULTIPART_BODY_LIMIT", 100)
    body = multipart_body(PAYLOAD, [("a.txt", b"x" * 200, None)])
    request = _request(body)
    request.META.pop("CONTENT_LENGTH")
    with pytest.raises(ApiError) as refused:
        parse_message_multipart(request, request)
    assert (refused.value.status, refused.value.message) == (413, "request body too large")


def test_a_body_without_a_length_is_parsed_whole():
    request = _request(multipart_body(PAYLOAD, [("a.txt", b"abc", None)]))
    request.META.pop("CONTENT_LENGTH")
    upload = parse_message_multipart(request, request)
    assert upload.payload == PAYLOAD and upload.files[0].size == 3


def test_a_content_type_without_boundary_is_a_decode_error():
    status, message = _refusal(b"whatever", content_type="multipart/form-data")
    assert status == 400 and message.startswith("decode multipart request: ")


def test_a_broken_part_is_a_decode_error():
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n'.encode()
    body += b"Content-Transfer-Encoding: base64\r\n\r\n!!!notbase64\r\n" + f"--{BOUNDARY}--\r\n".encode()
    status, message = _refusal(body)
    assert status == 400 and message.startswith("decode multipart request: ")


@pytest.mark.parametrize("payload", [None, "", "   \n"])
def test_a_missing_or_blank_payload(payload):
    assert _refusal(multipart_body(payload, [("a.txt", b"1", None)])) == (400, "payload is required")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("[1]", "decode payload: body must be a JSON object"),
        ("{", "decode payload: "),
        ('{"a": NaN}', "decode payload: "),
    ],
)
def test_a_payload_that_is_not_a_json_object(payload, expected):
    status, message = _refusal(multipart_body(payload))
    assert status == 400 and message.startswith(expected)


def test_decode_errors_of_fields_carry_the_payload_prefix():
    with pytest.raises(ApiError) as refused, multipart.payload_errors(multipart=True):
        raise ApiError(400, 'decode request: field "content" must be a string')
    assert refused.value.message == 'decode payload: field "content" must be a string'


def test_eleven_files_are_too_many_and_only_ten_are_written():
    upload = _parse(multipart_body(PAYLOAD, [(f"{index}.txt", b"x", None) for index in range(11)]))
    assert upload.file_parts == 11 and len(upload.files) == 10
    with pytest.raises(ApiError) as refused:
        check_attachment_limits(upload)
    assert (refused.value.status, refused.value.message) == (400, "too many attachments: max 10")


def test_too_many_attachments_comes_after_the_payload_checks():
    assert _refusal(multipart_body(None, [(f"{index}.txt", b"x", None) for index in range(11)])) == (
        400,
        "payload is required",
    )


@pytest.mark.timeout(60)
def test_a_file_one_byte_over_25_mib_is_too_large_and_not_kept_whole():
    upload = _parse(multipart_body(PAYLOAD, [("big.bin", b"\0" * (MAX_FILE_BYTES + 1), None)]))
    assert upload.files[0].size == MAX_FILE_BYTES + 1
    assert upload.files[0].temp_path.stat().st_size == MAX_FILE_BYTES
    with pytest.raises(ApiError) as refused:
        check_attachment_limits(upload)
    assert (refused.value.status, refused.value.message) == (
        413,
        'attachment payload is too large: attachment "big.bin" exceeds 26214400 bytes',
    )


@pytest.mark.timeout(60)
def test_files_within_the_body_limit_can_still_pass_the_message_limit():
    sizes = (MAX_FILE_BYTES, MAX_FILE_BYTES, MAX_MESSAGE_BYTES - 2 * MAX_FILE_BYTES + 1)
    status, message = _refusal(
        multipart_body(PAYLOAD, [(f"{size}.bin", b"\1" * size, None) for size in sizes])
    )
    assert (status, message) == (
        413,
        "attachment payload is too large: attachments exceed 67108864 bytes per message",
    )


@pytest.mark.timeout(60)
def test_three_files_of_25_mib_are_over_the_body_limit_itself():
    # The spec's example of the message limit: 75 MiB of files cannot fit a 65 MiB body.
    data = b"\1" * MAX_FILE_BYTES
    body = multipart_body(PAYLOAD, [(f"{index}.bin", data, None) for index in range(3)])
    assert _refusal(body) == (413, "request body too large")


def test_the_first_payload_field_counts():
    body = (
        field_part("payload", '{"n": 1}') + field_part("payload", '{"n": 2}') + f"--{BOUNDARY}--\r\n".encode()
    )
    assert _parse(body).payload == {"n": 1}
