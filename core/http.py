"""HTTP conventions shared by every route: plain-text errors (JSON when asked), body limits and decoding.

Plain Django views (streams, the LLM proxy, the bridge) use these directly; the DRF routes reach them
through core.api.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from typing import IO, Any

from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions

from core import errors

logger = logging.getLogger("csgclaw.http")

ONE_MIB = 1024 * 1024
# Body limits (security.md S6): the LLM routes carry whole conversations (llm-bridge.md §2), the rest JSON.
LLM_BODY_LIMIT = 10 * ONE_MIB
DEFAULT_BODY_LIMIT = ONE_MIB
# Message sends may be multipart with attachments: 64 MiB of files plus 1 MiB (threads-attachments.md
# §2.1). Their JSON bodies keep the 1 MiB limit, checked when they are decoded.
MULTIPART_MESSAGE_BODY_LIMIT = 64 * ONE_MIB + ONE_MIB
BODY_TOO_LARGE_TEXT = "request body too large"
# Deeper bodies are rejected before parsing: the C parser (and json.dumps when the LLM proxy re-encodes a
# body) recurse per level and must stay well below Python's recursion limit wherever the request is
# handled, or the answer would be a 500. No client nests nearly this deep.
MAX_JSON_DEPTH = 512
NOT_FOUND_TEXT = "404 page not found"
METHOD_NOT_ALLOWED_TEXT = "method not allowed"

STATUS_BY_ERROR_CODE: dict[errors.ErrorCode, int] = {
    errors.ErrorCode.INVALID: 400,
    errors.ErrorCode.NOT_FOUND: 404,
    errors.ErrorCode.CONFLICT: 409,
    errors.ErrorCode.UPSTREAM_FAILED: 502,
    errors.ErrorCode.UNAVAILABLE: 503,
}

# Lone surrogates (from "\ud800" escapes) and NUL cannot be stored (PostgreSQL rejects NUL), so both
# become U+FFFD, as upstream's decoder does for invalid sequences.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
# A whole JSON string (skipped as one token) or a bracket; only brackets change the nesting depth.
_JSON_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]+|\\.)*"|[\[\]{}]')


class ApiError(Exception):
    """An HTTP-level failure with an exact status and message (413, decode errors, 404 for bad paths)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def accepts_json(accept: str) -> bool:
    """True when an Accept value lists application/json explicitly (*/* and application/* do not count)."""
    return any(part.split(";", 1)[0].strip().lower() == "application/json" for part in accept.split(","))


def wants_json_errors(request: HttpRequest) -> bool:
    return accepts_json(request.headers.get("Accept", ""))


def error_content(status: int, message: str, *, as_json: bool) -> tuple[str, bytes]:
    """(content type, body) of an error answer; also used where no Django request exists yet."""
    if as_json:
        body = json.dumps({"error": {"status": status, "message": message}}, ensure_ascii=False)
        return "application/json", body.encode()
    return "text/plain; charset=utf-8", (message + "\n").encode()


def error_response(request: HttpRequest, status: int, message: str) -> HttpResponse:
    content_type, body = error_content(status, message, as_json=wants_json_errors(request))
    response = HttpResponse(body, status=status, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


# Set by the site's access layer (server.middleware) on a request that passed its local rule without a
# bearer: the admin's own browser, on this machine or with a /login session. Routes that the contract puts
# behind a bearer may let it in too when it could read the same data through the local routes anyway.
ADMIN_BROWSER_FLAG = "csgclaw_admin_browser"


def from_admin_browser(request: HttpRequest) -> bool:
    return getattr(request, ADMIN_BROWSER_FLAG, False)


def body_limit(path: str) -> int:
    """The largest request body a decoded URL path accepts (security.md S6): 10 MiB on LLM routes, 65 MiB
    on the message sends that take attachments (REST, participant and bot send)."""
    segments = path.split("/")
    if path in ("/api/v1/messages", "/api/v1/im/messages"):
        return MULTIPART_MESSAGE_BODY_LIMIT
    # /api/v1/channels/csgclaw/participants/{id}/messages
    if segments[1:6] == ["api", "v1", "channels", "csgclaw", "participants"] and segments[7:] == ["messages"]:
        return MULTIPART_MESSAGE_BODY_LIMIT
    # /api/bots/{bot_id}/messages/send
    if segments[1:3] == ["api", "bots"] and segments[4:] == ["messages", "send"]:
        return MULTIPART_MESSAGE_BODY_LIMIT
    # /api/bots/{bot_id}/llm/… and /api/v1/agents/{id}/llm[/…]
    if segments[1:3] == ["api", "bots"] and segments[4:5] == ["llm"]:
        return LLM_BODY_LIMIT
    if segments[1:4] == ["api", "v1", "agents"] and segments[5:6] == ["llm"]:
        return LLM_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


def response_for_exception(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The contract's response for any exception raised while handling an API request."""
    if isinstance(exc, ApiError):
        return error_response(request, exc.status, exc.message)
    if isinstance(exc, errors.DomainError):
        return error_response(request, STATUS_BY_ERROR_CODE[exc.code], exc.message)
    if isinstance(exc, drf_exceptions.ValidationError):
        # An input serializer's fields fail with the contract's texts, in check order: the first one wins.
        return error_response(request, 400, _first_message(exc.detail))
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return error_response(request, 405, METHOD_NOT_ALLOWED_TEXT)
    if isinstance(exc, (Http404, drf_exceptions.NotFound)):
        return error_response(request, 404, NOT_FOUND_TEXT)
    if isinstance(exc, SuspiciousOperation):
        # Django's own limits on what a request may carry: the client's fault, never a 500.
        return error_response(request, 400, "bad request")
    logger.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    return error_response(request, 500, "internal server error")


def _first_message(detail: Any) -> str:
    while isinstance(detail, (dict, list)):
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse:
    return response_for_exception(context["request"], exc)


# Exempt: CSRF would answer an unknown POST path with 403 before this view could say 404.
@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Every path outside the contract (also with DEBUG on, where Django would render HTML)."""
    return error_response(request, 404, NOT_FOUND_TEXT)


def method_not_allowed(request: HttpRequest) -> HttpResponse:
    return error_response(request, 405, METHOD_NOT_ALLOWED_TEXT)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return not_found(request)


def handler500(request: HttpRequest) -> HttpResponse:
    return error_response(request, 500, "internal server error")


class ApiErrorMiddleware(MiddlewareMixin):
    """Turns exceptions escaping non-DRF views (streams, LLM proxy) into contract errors, even with DEBUG."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if request.path.startswith("/admin/"):
            return None
        return response_for_exception(request, exception)


def clean_text(value: str) -> str:
    """Path parameters and query values: NUL and lone surrogates become U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value) if _UNSTORABLE.search(value) else value


def path_id(value: str) -> str:
    """A URL path id: decoded by Django, trimmed; empty means the path does not exist."""
    cleaned = clean_text(value).strip()
    if not cleaned:
        raise ApiError(404, NOT_FOUND_TEXT)
    return cleaned


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, or 413 when it is larger than `limit` bytes (never truncated)."""
    return read_limited(request, request.META.get("CONTENT_LENGTH"), limit)


def read_limited(stream: IO[bytes], content_length: str | None, limit: int) -> bytes:
    """All of `stream`, or 413 when its announced length or what it holds is over `limit` bytes."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise ApiError(413, BODY_TOO_LARGE_TEXT)
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, BODY_TOO_LARGE_TEXT)
    return raw


def _reject_constant(name: str) -> None:
    raise ValueError(f"invalid number literal {name}")


def _overflow(text: str) -> ValueError:
    shown = text if len(text) <= 32 else text[:32] + "..."
    return ValueError(f"number {shown} overflows a double")


def _parse_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise _overflow(text)
    return number


def _parse_int(text: str) -> int:
    # The largest double has 309 integer digits, so only integers that long can overflow one.
    if len(text.lstrip("-")) >= 309:
        _parse_float(text)
    return int(text)


def _replace_chars(value: Any, pattern: re.Pattern[str]) -> Any:
    """Every string of a decoded JSON value, keys included, with `pattern` replaced by U+FFFD.

    Walks with an explicit stack, changing containers in place: a recursive walk would add Python frames
    per nesting level on top of whatever the request handler already uses.
    """

    def clean(text: str) -> str:
        return pattern.sub("\ufffd", text) if pattern.search(text) else text

    if isinstance(value, str):
        return clean(value)
    pending = [value] if isinstance(value, (list, dict)) else []
    while pending:
        container = pending.pop()
        if isinstance(container, dict):
            cleaned = {clean(key): item for key, item in container.items()}
            container.clear()
            container.update(cleaned)
            slots = container.keys()
        else:
            slots = range(len(container))
        for slot in slots:
            item = container[slot]
            if isinstance(item, str):
                container[slot] = clean(item)
            elif isinstance(item, (list, dict)):
                pending.append(item)
    return value


def _nests_deeper_than(text: str, limit: int) -> bool:
    depth = 0
    for match in _JSON_STRING_OR_BRACKET.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > limit:
                return True
        elif token in "]}":
            depth -= 1
    return False


def decode_json(raw: bytes, *, keep_nul: bool = False) -> Any:
    """Strict RFC 8259 JSON in UTF-8 with upstream's leniencies (BOM skipped, bad sequences → U+FFFD)."""
    text = raw.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if not text.strip():
        raise ApiError(400, "decode request: EOF")
    if _nests_deeper_than(text, MAX_JSON_DEPTH):
        raise ApiError(400, "decode request: exceeded max depth")
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int
        )
    except RecursionError:
        raise ApiError(400, "decode request: exceeded max depth") from None
    except ValueError as exc:
        raise ApiError(400, f"decode request: {exc}") from None
    return _replace_chars(value, _LONE_SURROGATES if keep_nul else _UNSTORABLE)


def decode_json_object(raw: bytes, *, keep_nul: bool = False) -> dict[str, Any]:
    value = decode_json(raw, keep_nul=keep_nul)
    if not isinstance(value, dict):
        raise ApiError(400, "decode request: body must be a JSON object")
    return value


def field_type_text(name: str, expected: str) -> str:
    """The decode error of a known field with a value of the wrong type (http-api.md §1.2)."""
    return f'decode request: field "{name}" must be {expected}'


def parse_json_body(
    request: HttpRequest,
    *,
    strings: Iterable[str] = (),
    string_lists: Iterable[str] = (),
    limit: int = ONE_MIB,
) -> dict[str, Any]:
    """Read, size-check and decode a JSON object body, checking the types of the endpoint's known fields.

    For plain Django views; DRF routes get the same from core.api's parser and fields. JSON null means
    "absent" (the key is dropped) and a null element of a string array counts as "".
    """
    return checked_field_types(
        decode_json_object(read_body(request, limit)), strings=strings, string_lists=string_lists
    )


def checked_field_types(
    body: dict[str, Any], *, strings: Iterable[str] = (), string_lists: Iterable[str] = ()
) -> dict[str, Any]:
    """`parse_json_body`'s field checks on an already decoded object (a multipart message's payload)."""
    for name in strings:
        value = body.get(name)
        if value is None:
            body.pop(name, None)
        elif not isinstance(value, str):
            raise ApiError(400, field_type_text(name, "a string"))
    for name in string_lists:
        value = body.get(name)
        if value is None:
            body.pop(name, None)
        elif not isinstance(value, list) or not all(item is None or isinstance(item, str) for item in value):
            raise ApiError(400, field_type_text(name, "an array of strings"))
        else:
            body[name] = ["" if item is None else item for item in value]
    return body


def request_locale(request: HttpRequest, body_locale: str = "") -> str:
    """The body's locale if non-blank, else the first Accept-Language tag, else English."""
    if body_locale.strip():
        return body_locale.strip()
    first_tag = request.headers.get("Accept-Language", "").split(",", 1)[0].split(";", 1)[0].strip()
    return first_tag or "en"


def query_value(request: HttpRequest, name: str) -> str:
    """The first value of a query parameter (as upstream's Go server reads it), cleaned and trimmed."""
    values = request.GET.getlist(name)
    return clean_text(values[0]).strip() if values else ""
