"""The HTTP server: an OpenAI-compatible embedding API over the dynamic batcher.

>>> from embedlab.server import ServerSettings, create_app
>>> app = create_app(ServerSettings(model=None))   # doctest: +SKIP
"""

from embedlab.server.app import create_app, load_embedder
from embedlab.server.settings import ServerSettings
from embedlab.server.state import ServerState

__all__ = ["ServerSettings", "ServerState", "create_app", "load_embedder"]
