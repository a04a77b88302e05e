"""Domain errors raised by services and selectors; the HTTP layer maps each kind to a status."""


class DomainError(Exception):
    """Base class; str() is the exact client-facing message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    """The request cannot be carried out as given (400)."""


class NotFound(DomainError):
    """The addressed thing does not exist (404)."""


class Conflict(DomainError):
    """The thing exists but is in a state that forbids the operation (409)."""


class UpstreamFailed(DomainError):
    """A dependency (sandbox runtime, provisioning) failed (502)."""


class Unavailable(DomainError):
    """A required configuration or service is unusable right now (503)."""
