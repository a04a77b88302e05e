"""Domain errors raised by services and selectors, each with a stable code the HTTP layer maps to a status."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Stable names of the kinds of failure, for code that branches on them and for the API docs.

    Never sent on the wire: an error body carries only the status and the exact message (http-api.md §1.3).
    """

    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UPSTREAM_FAILED = "upstream_failed"
    UNAVAILABLE = "unavailable"


class DomainError(Exception):
    """Base class; str() is the exact client-facing message, `code` the kind of failure."""

    code: ClassVar[ErrorCode]

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The request cannot be carried out as given (400)."""

    code = ErrorCode.INVALID


class NotFound(DomainError):
    """The addressed thing does not exist (404)."""

    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    """The thing exists but is in a state that forbids the operation (409)."""

    code = ErrorCode.CONFLICT


class UpstreamFailed(DomainError):
    """A dependency (sandbox runtime, provisioning) failed (502)."""

    code = ErrorCode.UPSTREAM_FAILED


class Unavailable(DomainError):
    """A required configuration or service is unusable right now (503)."""

    code = ErrorCode.UNAVAILABLE
