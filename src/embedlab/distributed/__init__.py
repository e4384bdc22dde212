"""Scale out on Ray: batch embedding on Ray Data and serving replicas on Ray Serve.

Ray is an optional dependency (``pip install 'embedlab[ray]'``); nothing here imports it at module import time.

Layout:

- :mod:`.shards`: input files, output parts, the manifest that pins the model, resumption (no Ray needed).
- :mod:`.cluster`: starting a local Ray on loopback or joining a cluster, with a bounded reachability check.
- :mod:`.ray_embed`: the Ray Data pipeline (read parts → actor pool embeds and writes each part) and its report.
- :mod:`.redis_cache`: a Redis implementation of :class:`embedlab.engine.cache.VectorCache` shared by replicas.
- :mod:`.ray_serve`: ``embedlab serve --replicas N --ray``: the server app behind a Ray Serve deployment.
"""

from __future__ import annotations

from embedlab.distributed.ray_embed import RayEmbedReport, RayJobSettings, run_ray_embed

__all__ = ["RayEmbedReport", "RayJobSettings", "run_ray_embed"]
