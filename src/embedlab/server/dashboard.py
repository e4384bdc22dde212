"""The dashboard page: one static HTML file with inline CSS and JS (no CDN), shipped in the package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def dashboard_html() -> str:
    """The page's HTML. It reads ``/info``, ``/health`` and ``/metrics`` and posts to ``/v1/embeddings``."""
    return resources.files("embedlab.server").joinpath("static", "dashboard.html").read_text(encoding="utf-8")
