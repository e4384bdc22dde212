"""The one error table: every error type answers its status with an OpenAI-shaped body."""

from __future__ import annotations

import json

import pytest

from embedlab.errors import (
    AuthenticationError,
    ConfigError,
    EmptyInputError,
    ExportError,
    InferenceError,
    InputTooLongError,
    ModelLoadError,
    OverloadedError,
    RequestTooLargeError,
    UnknownModelError,
    WorkerUnavailableError,
)
from embedlab.server.errors import (
    ERROR_TABLE,
    MalformedBodyError,
    RequestSchemaError,
    UnsupportedMediaTypeError,
    error_response,
    rule_for,
)

CASES = [
    (AuthenticationError("no key"), 401, "invalid_api_key"),
    (RequestTooLargeError("big"), 413, "request_too_large"),
    (UnsupportedMediaTypeError("text/plain"), 415, "unsupported_media_type"),
    (RequestSchemaError("unknown field 'x'", "x"), 400, "invalid_request_schema"),
    (MalformedBodyError("not JSON"), 400, "invalid_json"),
    (UnknownModelError("gpt-4"), 400, "model_not_found"),
    (InputTooLongError(3, 900, 512), 400, "context_length_exceeded"),
    (EmptyInputError("empty"), 400, "invalid_input"),
    (ConfigError("dimensions"), 400, "invalid_parameter"),
    (OverloadedError("busy", retry_after=2.4), 429, "server_overloaded"),
    (WorkerUnavailableError("stuck"), 503, "worker_unavailable"),
    (InferenceError("ort failed"), 500, "backend_error"),
    (ExportError("export"), 500, "backend_error"),
    (ModelLoadError("files"), 500, "internal_error"),
    (RuntimeError("a bug"), 500, "internal_error"),
]


@pytest.mark.parametrize(("error", "status", "code"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_error_type_maps_to_one_status(error: Exception, status: int, code: str) -> None:
    response = error_response(error)
    assert response.status_code == status
    body = json.loads(bytes(response.body))
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    if isinstance(error, RuntimeError):
        assert body["error"]["message"] == "internal server error"  # never leak internals
    else:
        assert body["error"]["message"] == str(error)


def test_retry_after_and_www_authenticate_headers() -> None:
    assert error_response(OverloadedError("busy", retry_after=2.4)).headers["retry-after"] == "3"
    assert error_response(WorkerUnavailableError("stuck", retry_after=0.1)).headers["retry-after"] == "1"
    assert error_response(AuthenticationError("no")).headers["www-authenticate"] == "Bearer"
    assert json.loads(bytes(error_response(RequestSchemaError("bad", "input.3")).body))["error"]["param"] == "input.3"


def test_table_rows_go_from_narrow_to_broad() -> None:
    for i, earlier in enumerate(ERROR_TABLE):
        for later in ERROR_TABLE[i + 1 :]:
            assert not issubclass(later.kind, earlier.kind), (
                f"{later.kind.__name__} is shadowed by {earlier.kind.__name__}"
            )
    assert rule_for(InputTooLongError(0, 9, 8)).code == "context_length_exceeded"
