"""HTTP errors a web view raises to answer with an error status: ``raise
self.NotFound("no such vendor")`` answers ``404 {"error": "no such vendor"}``.

The names, codes and default texts are Faust's (``faust.web.exceptions``).
"""
from __future__ import annotations

from http import HTTPStatus
from typing import Any

from streamkit.errors import StreamkitError

__all__ = ["AuthenticationFailed", "MethodNotAllowed", "NotAcceptable", "NotAuthenticated",
           "NotFound", "ParseError", "PermissionDenied", "ServerError", "Throttled",
           "UnsupportedMediaType", "ValidationError", "WebError"]


class WebError(StreamkitError):
    """An error answered as ``{"error": detail, **extra_context}`` with status ``code``."""

    code: int = HTTPStatus.INTERNAL_SERVER_ERROR
    detail: str = "Internal server error."

    def __init__(self, detail: str | None = None, *, code: int | None = None,
                 **extra_context: Any) -> None:
        if detail:
            self.detail = detail
        if code:
            self.code = code
        self.extra_context = extra_context
        super().__init__(self.detail)


class ServerError(WebError):
    """500 Internal Server Error."""


class ValidationError(WebError):
    """400: invalid input in the request's data."""

    code = HTTPStatus.BAD_REQUEST
    detail = "Invalid input."


class ParseError(WebError):
    """400: a request that cannot be read (a body that is not JSON)."""

    code = HTTPStatus.BAD_REQUEST
    detail = "Malformed request."


class AuthenticationFailed(WebError):
    """401: wrong credentials."""

    code = HTTPStatus.UNAUTHORIZED
    detail = "Incorrect authentication credentials"


class NotAuthenticated(WebError):
    """401: no credentials."""

    code = HTTPStatus.UNAUTHORIZED
    detail = "Authentication credentials were not provided."


class PermissionDenied(WebError):
    """403."""

    code = HTTPStatus.FORBIDDEN
    detail = "You do not have permission to perform this action."


class NotFound(WebError):
    """404."""

    code = HTTPStatus.NOT_FOUND
    detail = "Not found."


class MethodNotAllowed(WebError):
    """405: the view has no handler for the request's method."""

    code = HTTPStatus.METHOD_NOT_ALLOWED
    detail = "Method not allowed."


class NotAcceptable(WebError):
    """406: the ``Accept`` header cannot be satisfied."""

    code = HTTPStatus.NOT_ACCEPTABLE
    detail = "Could not satisfy the request Accept header."


class UnsupportedMediaType(WebError):
    """415: a request body of a type the view does not read."""

    code = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    detail = "Unsupported media type in request."


class Throttled(WebError):
    """429."""

    code = HTTPStatus.TOO_MANY_REQUESTS
    detail = "Request was throttled."
