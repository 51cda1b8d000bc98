"""API failures the rest of the operator reacts to, independent of the HTTP client."""

from __future__ import annotations


class ApiError(Exception):
    """A request the API server answered with an error status (or never answered)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class AlreadyExists(ApiError):
    """409 AlreadyExists: a create found an object of that name."""


class Conflict(ApiError):
    """409 Conflict: a write lost an optimistic-concurrency race (stale resourceVersion)."""


class Invalid(ApiError):
    """422: the API server's validation (schema, CEL) rejected the body."""


def error_for(status: int, reason: str, message: str) -> ApiError:
    if status == 404:
        return NotFound(status, reason, message)
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(status, reason, message)
    if status == 409:
        return Conflict(status, reason, message)
    if status == 422:
        return Invalid(status, reason, message)
    return ApiError(status, reason, message)
