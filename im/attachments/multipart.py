"""Multipart message bodies (threads-attachments.md §2.4): a `payload` JSON field and `files`/`file` parts.

Files are streamed to temporary files beside the blobs and hashed while they arrive (an upload handler
of Django's multipart parser), so no file is ever held in memory. The route then checks the payload's
fields, calls `check_attachment_limits`, and runs its service; `discard_uploads` removes what was not
stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParser, MultiPartParserError
from django.utils.datastructures import MultiValueDict
from rest_framework import exceptions as drf_exceptions
from rest_framework.parsers import DataAndFiles
from rest_framework.request import Request

from core.api import ContractJSONParser
from core.http import BODY_TOO_LARGE_TEXT, MULTIPART_MESSAGE_BODY_LIMIT, ApiError, decode_json_object
from im.attachments.media import quoted
from im.attachments.storage import IncomingFile

MAX_FILES = 10
MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MULTIPART_BODY_LIMIT = MULTIPART_MESSAGE_BODY_LIMIT
FILE_FIELDS = ("files", "file")
# The multipart parser's read size, and what each upload writes at a time.
CHUNK_BYTES = 64 * 1024

REQUEST_PREFIX = "decode request: "
PAYLOAD_PREFIX = "decode payload: "


def is_multipart(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "multipart/form-data"


@dataclass
class MessageUpload:
    """A parsed multipart message body: the decoded payload and the files, `files` parts first."""

    payload: dict[str, Any]
    files: list[IncomingFile] = field(default_factory=list)
    file_parts: int = 0


class _CountedBody:
    """The request body, refused with 413 once more than the multipart limit has been read."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._read += len(chunk)
        if self._read > MULTIPART_BODY_LIMIT:
            raise ApiError(413, BODY_TOO_LARGE_TEXT)
        return chunk


class _AttachmentUploadHandler(FileUploadHandler):
    """Writes the parts named `files`/`file` to temporary files; other file parts are read and dropped.

    Only the first ten attachment parts are written (more are refused anyway, but still counted), and a
    file stops being written past the per-file limit while its size is still counted.
    """

    chunk_size = CHUNK_BYTES

    def __init__(self) -> None:
        super().__init__()
        self.by_field: dict[str, list[IncomingFile]] = {name: [] for name in FILE_FIELDS}
        self.file_parts = 0
        self._current: IncomingFile | None = None

    def new_file(self, field_name: str, file_name: str, content_type: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, content_type, *args, **kwargs)
        self._current = None
        if field_name not in self.by_field:
            return
        self.file_parts += 1
        if self.file_parts > MAX_FILES:
            return
        self._current = IncomingFile(
            name=file_name, content_type=content_type or None, keep_limit=MAX_FILE_BYTES
        )
        self.by_field[field_name].append(self._current)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self._current is not None:
            self._current.write(raw_data)

    def file_complete(self, file_size: int) -> None:
        # The parser's own file list is not used: the handler keeps every file, so failures can clean up.
        if self._current is not None:
            self._current.close()
        self._current = None

    def all_files(self) -> list[IncomingFile]:
        return [incoming for name in FILE_FIELDS for incoming in self.by_field[name]]


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def parse_message_multipart(request: HttpRequest, stream: IO[bytes]) -> MessageUpload:
    """§2.4 checks 1–4: body size, multipart syntax, `payload` present and a JSON object."""
    declared = _declared_length(request)
    if declared is not None and declared > MULTIPART_BODY_LIMIT:
        raise ApiError(413, BODY_TOO_LARGE_TEXT)
    meta = dict(request.META)
    # A chunked body announces no length; Django's parser would take it for an empty one.
    meta["CONTENT_LENGTH"] = str(declared if declared else MULTIPART_BODY_LIMIT)
    handler = _AttachmentUploadHandler()
    try:
        parser = MultiPartParser(meta, _CountedBody(stream), [handler], "utf-8")
        fields, _ = parser.parse()
    except TooManyFilesSent:
        discard_uploads(handler.all_files())
        raise ApiError(400, f"too many attachments: max {MAX_FILES}") from None
    except RequestDataTooBig:
        discard_uploads(handler.all_files())
        raise ApiError(413, BODY_TOO_LARGE_TEXT) from None
    except (MultiPartParserError, SuspiciousOperation, UnicodeDecodeError) as exc:
        discard_uploads(handler.all_files())
        raise ApiError(400, f"decode multipart request: {exc}") from None
    except BaseException:
        discard_uploads(handler.all_files())
        raise
    upload = MessageUpload(payload={}, files=handler.all_files(), file_parts=handler.file_parts)
    try:
        # The first `payload` field, as Go's FormValue reads it (QueryDict.get would give the last).
        upload.payload = decode_payload(next(iter(fields.getlist("payload")), ""))
    except ApiError:
        discard_uploads(upload.files)
        raise
    return upload


def decode_payload(text: str) -> dict[str, Any]:
    if not text.strip():
        raise ApiError(400, "payload is required")
    with payload_errors(multipart=True):
        return decode_json_object(text.encode("utf-8", errors="surrogatepass"))


@contextlib.contextmanager
def payload_errors(*, multipart: bool) -> Iterator[None]:
    """A multipart payload's decode errors say `decode payload: …` (JSON bodies: `decode request: …`)."""
    if not multipart:
        yield
        return
    try:
        yield
    except ApiError as exc:
        if exc.message.startswith(REQUEST_PREFIX):
            raise ApiError(exc.status, PAYLOAD_PREFIX + exc.message.removeprefix(REQUEST_PREFIX)) from None
        raise
    except drf_exceptions.ValidationError as exc:
        message = _first_detail(exc.detail)
        if message.startswith(REQUEST_PREFIX):
            raise ApiError(400, PAYLOAD_PREFIX + message.removeprefix(REQUEST_PREFIX)) from None
        raise


def _first_detail(detail: Any) -> str:
    while isinstance(detail, (dict, list)):
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


def check_attachment_limits(upload: MessageUpload) -> None:
    """§2.4 checks 5 and 6: at most ten files, each within 25 MiB, together within 64 MiB."""
    if upload.file_parts > MAX_FILES:
        raise ApiError(400, f"too many attachments: max {MAX_FILES}")
    total = 0
    for incoming in upload.files:
        if incoming.size > MAX_FILE_BYTES:
            raise ApiError(
                413,
                f"attachment payload is too large: attachment {quoted(incoming.name)}"
                f" exceeds {MAX_FILE_BYTES} bytes",
            )
        total += incoming.size
        if total > MAX_MESSAGE_BYTES:
            raise ApiError(
                413,
                f"attachment payload is too large: attachments exceed {MAX_MESSAGE_BYTES} bytes per message",
            )


# Where MessageBodyParser leaves a multipart body's upload among the DRF request's files.
UPLOAD_KEY = "message_upload"

# The OpenAPI description of a multipart message body.
MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "payload": {"type": "string", "description": "the JSON object the route takes as a JSON body"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}, "maxItems": MAX_FILES},
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
    },
    "required": ["payload"],
}


class MessageBodyParser(ContractJSONParser):
    """A message send's body: JSON as every route (1 MiB), or multipart with attachments (§2.4)."""

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any] | DataAndFiles:
        request = parser_context["request"]
        if not is_multipart(request.META.get("CONTENT_TYPE", "")):
            return super().parse(stream, media_type, parser_context)
        upload = parse_message_multipart(request, stream)
        return DataAndFiles(upload.payload, MultiValueDict({UPLOAD_KEY: [upload]}))


def message_upload(request: Request) -> MessageUpload | None:
    """The multipart upload of a request parsed by MessageBodyParser; None for a JSON body."""
    return request.FILES.get(UPLOAD_KEY)


def discard_uploads(files: Iterable[IncomingFile]) -> None:
    for incoming in files:
        incoming.discard()
