"""Bearer-key auth: what reaches the app behind the middleware, the open routes, and the key setting."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from embedlab.engine.embedder import Embedder
from embedlab.errors import ConfigError
from embedlab.server import ServerSettings, create_app
from embedlab.server.auth import OPEN_ROUTES, BearerAuthMiddleware
from embedlab.server.metrics import Receive, Scope, Send
from embedlab.settings import load_settings

KEY = "s3cret-key"


class Recorder:
    """The app behind the middleware: answers 200 with the method and path, remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.decode(): value.decode() for name, value in scope.get("headers", [])}
        self.seen.append((scope.get("method", ""), scope.get("path", ""), headers))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": f"{scope.get('method')} {scope.get('path')}".encode()})


def call(app: Any, method: str, path: str, authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.request(method, path, headers=headers)

    return asyncio.run(go())


@pytest.fixture
def guarded() -> tuple[BearerAuthMiddleware, Recorder]:
    inner = Recorder()
    return BearerAuthMiddleware(inner, api_key=KEY), inner


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        BearerAuthMiddleware(Recorder(), api_key="")


def test_the_right_key_reaches_the_app_untouched(guarded: tuple[BearerAuthMiddleware, Recorder]) -> None:
    app, inner = guarded
    answer = call(app, "POST", "/v1/embeddings", f"Bearer {KEY}")
    assert answer.status_code == 200 and answer.text == "POST /v1/embeddings"
    assert [(m, p, h["authorization"]) for m, p, h in inner.seen] == [("POST", "/v1/embeddings", f"Bearer {KEY}")]


def test_no_key_is_401_and_never_reaches_the_app(guarded: tuple[BearerAuthMiddleware, Recorder]) -> None:
    app, inner = guarded
    answer = call(app, "GET", "/info")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"] == {
        "message": "no API key given; send the header 'Authorization: Bearer <key>'",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }
    assert call(app, "GET", "/info", "").status_code == 401  # an empty header is no key either
    assert inner.seen == []


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nope",
        f"Bearer {KEY}x",  # the key as a prefix of a longer one
        f"Bearer {KEY[:-1]}",  # a prefix of the key
        KEY,  # no scheme
        f"Basic {KEY}",
        f"Bearer  {KEY}",  # two spaces: another token
        f"Token {KEY}",
    ],
)
def test_a_wrong_key_is_401_and_never_reaches_the_app(
    guarded: tuple[BearerAuthMiddleware, Recorder], authorization: str
) -> None:
    app, inner = guarded
    answer = call(app, "POST", "/v1/embeddings", authorization)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert error["message"].startswith("the API key is not valid;") and error["code"] == "invalid_api_key"
    assert KEY not in answer.text  # the expected key is never echoed
    assert inner.seen == []


def test_only_the_health_check_and_the_page_are_open(guarded: tuple[BearerAuthMiddleware, Recorder]) -> None:
    app, inner = guarded
    assert sorted(OPEN_ROUTES) == [("GET", "/"), ("GET", "/health"), ("HEAD", "/"), ("HEAD", "/health")]
    for method, path in sorted(OPEN_ROUTES):
        assert call(app, method, path).status_code == 200, (method, path)
    assert [(m, p) for m, p, _ in inner.seen] == sorted(OPEN_ROUTES)
    for method, path in (("POST", "/health"), ("GET", "/health/"), ("GET", "/healthz"), ("GET", "/index.html")):
        assert call(app, method, path).status_code == 401, (method, path)
    assert len(inner.seen) == len(OPEN_ROUTES)


def test_non_http_scopes_pass_without_a_key() -> None:
    reached: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["type"])

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        raise AssertionError(f"nothing may be answered for a lifespan scope: {message}")

    app = BearerAuthMiddleware(inner, api_key=KEY)
    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert reached == ["lifespan"]


def test_the_real_app_hides_its_routes_from_clients_without_the_key(tiny_embedder: Embedder) -> None:
    app = create_app(ServerSettings(api_key=KEY, served_model_name="tiny"), embedder=tiny_embedder)
    assert call(app, "GET", "/no/such/route").status_code == 401  # not 404: no map of the API without a key
    assert call(app, "GET", "/no/such/route", f"Bearer {KEY}").status_code == 404
    models = call(app, "GET", "/v1/models", f"Bearer {KEY}")
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "tiny"
    assert call(app, "GET", "/v1/models", "Bearer wrong").status_code == 401
    # /health is open: without the lifespan (not run here) it answers 503 "starting", not 401
    assert call(app, "GET", "/health").status_code == 503


def test_an_empty_key_setting_is_a_clear_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="the API key is empty"):
        ServerSettings(api_key="")
    monkeypatch.setenv("EMBEDLAB_API_KEY", "")  # e.g. api_key: ${KEY} in a compose file, KEY unset
    with pytest.raises(ConfigError, match=r"api_key: .*the API key is empty"):
        load_settings(ServerSettings)
    monkeypatch.setenv("EMBEDLAB_API_KEY", KEY)
    key = load_settings(ServerSettings).api_key
    assert key is not None and key.get_secret_value() == KEY
