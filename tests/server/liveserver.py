"""A real uvicorn server in a thread on 127.0.0.1 (port picked by the OS), for tests of the HTTP API."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from embedlab.server import ServerSettings, ServerState


class LiveServer:
    """A uvicorn server running ``app`` in a thread, bound to 127.0.0.1 on a port the OS picked."""

    def __init__(self, app: FastAPI):
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-uvicorn", daemon=True)

    def start(self, timeout: float = 60.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server did not start (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> ServerState:
        state: ServerState = self.app.state.server
        return state


@contextmanager
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """Serve ``app`` for the duration of the block."""
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def tiny_settings(**overrides: Any) -> ServerSettings:
    """Server settings for the tiny model: served as ``tiny``, small timeouts."""
    values: dict[str, Any] = {"served_model_name": "tiny", "inference_timeout_s": 5.0, "request_timeout_s": 20.0}
    values.update(overrides)
    return ServerSettings(**values)
