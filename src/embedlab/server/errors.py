"""The ONE table that maps error types to HTTP status codes, and OpenAI-shaped error bodies.

Every error answer has the body ``{"error": {"message", "type", "param", "code"}}``. The first row
whose type matches (``isinstance``, rows ordered narrow to broad) decides the status. Every kind of
bad request value is a 400, whatever stage finds it (the body's schema, the model's limits); the
other 4xx are for what is not a value: the key (401), the route (404, 405), the size (413), the
content type (415) and the load (429):

=============================  ======  =======================  ==========================
error                          status  type                     code
=============================  ======  =======================  ==========================
AuthenticationError            401     authentication_error     invalid_api_key
RouteNotFoundError             404     invalid_request_error    not_found
MethodNotAllowedError          405     invalid_request_error    method_not_allowed
RequestTooLargeError           413     invalid_request_error    request_too_large
UnsupportedMediaTypeError      415     invalid_request_error    unsupported_media_type
RequestSchemaError             400     invalid_request_error    invalid_request_schema
MalformedBodyError             400     invalid_request_error    invalid_json
UnknownModelError              400     invalid_request_error    model_not_found
InputTooLongError              400     invalid_request_error    context_length_exceeded
InputError (others)            400     invalid_request_error    invalid_input
ConfigError                    400     invalid_request_error    invalid_parameter
OverloadedError                429     overloaded_error         server_overloaded
WorkerUnavailableError         503     service_unavailable      worker_unavailable
BackendError                   500     server_error             backend_error
EmbedlabError (others)         500     server_error             internal_error
any other exception            500     server_error             internal_error
=============================  ======  =======================  ==========================

:class:`ServiceError` answers (429, 503) carry a ``Retry-After`` header in whole seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response

from embedlab.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    EmbedlabError,
    InputError,
    InputTooLongError,
    OverloadedError,
    RequestTooLargeError,
    ServiceError,
    UnknownModelError,
    WorkerUnavailableError,
)


class MalformedBodyError(InputError):
    """The body is not valid JSON."""


class UnsupportedMediaTypeError(InputError):
    """The body is not sent as ``application/json``."""


class RequestSchemaError(InputError):
    """The JSON body does not match the route's schema: a missing, unknown or mistyped field, or a value outside
    a field's choices.

    Attributes:
        param: the first offending field, dotted (``input.3``), or None.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class RouteNotFoundError(InputError):
    """No route at this path."""


class MethodNotAllowedError(InputError):
    """The route exists but not for this HTTP method."""


@dataclass(frozen=True)
class ErrorRule:
    """One row of the table: errors of ``kind`` answer ``status`` with this OpenAI ``type`` and ``code``."""

    kind: type[BaseException]
    status: int
    type: str
    code: str


ERROR_TABLE: tuple[ErrorRule, ...] = (
    ErrorRule(AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    ErrorRule(RouteNotFoundError, 404, "invalid_request_error", "not_found"),
    ErrorRule(MethodNotAllowedError, 405, "invalid_request_error", "method_not_allowed"),
    ErrorRule(RequestTooLargeError, 413, "invalid_request_error", "request_too_large"),
    ErrorRule(UnsupportedMediaTypeError, 415, "invalid_request_error", "unsupported_media_type"),
    ErrorRule(RequestSchemaError, 400, "invalid_request_error", "invalid_request_schema"),
    ErrorRule(MalformedBodyError, 400, "invalid_request_error", "invalid_json"),
    ErrorRule(UnknownModelError, 400, "invalid_request_error", "model_not_found"),
    ErrorRule(InputTooLongError, 400, "invalid_request_error", "context_length_exceeded"),
    ErrorRule(InputError, 400, "invalid_request_error", "invalid_input"),
    ErrorRule(ConfigError, 400, "invalid_request_error", "invalid_parameter"),
    ErrorRule(OverloadedError, 429, "overloaded_error", "server_overloaded"),
    ErrorRule(WorkerUnavailableError, 503, "service_unavailable", "worker_unavailable"),
    ErrorRule(BackendError, 500, "server_error", "backend_error"),
    ErrorRule(EmbedlabError, 500, "server_error", "internal_error"),
)
_FALLBACK = ErrorRule(Exception, 500, "server_error", "internal_error")


def rule_for(error: BaseException) -> ErrorRule:
    """The first row of :data:`ERROR_TABLE` that ``error`` is an instance of (500 if none)."""
    for rule in ERROR_TABLE:
        if isinstance(error, rule.kind):
            return rule
    return _FALLBACK


def error_response(error: BaseException, param: str | None = None, extra: dict[str, Any] | None = None) -> Response:
    """An OpenAI-shaped JSON error answer for ``error``, with ``Retry-After`` / ``WWW-Authenticate`` as due.

    ``extra``: more top-level keys of the body beside ``error`` (``/health`` lists each model's state).
    """
    rule = rule_for(error)
    message = str(error) if isinstance(error, EmbedlabError) else "internal server error"
    if param is None and isinstance(error, RequestSchemaError):
        param = error.param
    body: dict[str, Any] = {"error": {"message": message, "type": rule.type, "param": param, "code": rule.code}}
    body.update(extra or {})
    headers: dict[str, str] = {}
    if isinstance(error, ServiceError):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    return Response(orjson.dumps(body), status_code=rule.status, headers=headers, media_type="application/json")
