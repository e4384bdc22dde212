"""Where embedlab keeps files it makes (exported graphs, caches)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache directory: ``$EMBEDLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/embedlab``, else ``~/.cache/embedlab``.

    Read when called (never at import), so tests and settings can point it elsewhere.
    """
    explicit = os.environ.get("EMBEDLAB_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "embedlab"
