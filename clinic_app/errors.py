"""Domain errors: raised by services, translated by views (a form message) and the
API (``{"error": {"code", "message", "fields"}}``). One shape everywhere."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A use case refused; ``code`` is stable and machine-readable."""

    status = 422
    code = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return {"error": body}


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class NotAuthenticated(DomainError):
    status = 401
    code = "not_authenticated"


class NotFound(DomainError):
    """Also used for "not yours": nobody learns that someone else's object exists."""

    status = 404
    code = "not_found"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class SlotTaken(Conflict):
    code = "slot_taken"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
