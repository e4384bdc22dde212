"""``embedlab serve --ray --replicas N``: N copies of the server app behind Ray Serve's HTTP proxy.

Each replica is a Ray actor that builds the very same app as ``embedlab serve`` (:func:`create_app`: its
own model copy, dynamic batcher, admission limits, metrics and routes) when it starts; Ray Serve's proxy
spreads requests over the replicas. With ``cache_url`` (``redis://...``) every replica's batcher uses one
:class:`RedisVectorCache`, so a text embedded by one replica is a cache hit on all of them; without it,
each replica keeps its own local cache as configured.

Note: ``/metrics`` and the dashboard describe the replica that answered, not the whole deployment.
"""

from __future__ import annotations

from typing import Any

from embedlab.distributed.cluster import ensure_ray, import_ray
from embedlab.errors import ClusterError, ConfigError

DEPLOYMENT_NAME = "embedlab"


def build_replica_app(settings: Any, cache_url: str | None) -> Any:
    """The FastAPI app one replica serves: :func:`embedlab.server.create_app`, with a shared Redis cache if asked.

    The app's own local cache is turned off when ``cache_url`` is given, and the batcher's cache is the
    Redis one (``create_app`` has no cache argument, so it is set on the built state before startup).

    Raises:
        ConfigError: Redis unreachable or malformed URL; model errors as :func:`create_app`.
    """
    from embedlab.server import create_app

    if cache_url is None:
        return create_app(settings)
    from embedlab.distributed.redis_cache import RedisVectorCache

    no_local = {"cache_entries": None, "cache_path": None}
    models = [entry.model_copy(update=no_local) for entry in settings.models]
    app = create_app(settings.model_copy(update={"cache_entries": 0, "cache_path": None, "models": models}))
    for model in app.state.server.models:  # one Redis cache per served model: its keys hold the model's identity
        cache = RedisVectorCache(cache_url, model.embedder.spec.hidden_size)
        model.batcher.cache = cache
        model.cache = cache
    return app


class EmbedlabReplica:
    """The Ray Serve deployment class: holds the settings; Serve calls ``__serve_build_asgi_app__`` on the replica."""

    def __init__(self, settings: Any, cache_url: str | None) -> None:
        self.settings = settings
        self.cache_url = cache_url

    def __serve_build_asgi_app__(self) -> Any:
        """Build the replica's app (model loaded here, inside the replica's process)."""
        return build_replica_app(self.settings, self.cache_url)


def build_deployment(settings: Any, replicas: int, cpus_per_replica: float = 1.0, cache_url: str | None = None) -> Any:
    """The bound Ray Serve application: ``replicas`` copies of :class:`EmbedlabReplica`.

    Args:
        settings: :class:`embedlab.server.settings.ServerSettings` (host/port are the proxy's).
        replicas: copies of the server engine (each loads the model).
        cpus_per_replica: CPUs Ray reserves per replica; unless ``settings.threads`` or ``workers`` is set,
            the replica's workers and threads share out these CPUs (not the machine's cores).
        cache_url: ``redis://HOST:PORT/DB`` for a cache shared by all replicas.

    Raises:
        ConfigError: ``replicas`` < 1, ``cpus_per_replica`` ≤ 0, or a cache URL that is not redis://.
    """
    if replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {replicas}")
    if cpus_per_replica <= 0:
        raise ConfigError(f"CPUs per replica must be > 0, got {cpus_per_replica}")
    if cache_url is not None and not cache_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"a shared cache is a Redis URL (redis://HOST:PORT/DB), got {cache_url!r}")
    from ray import serve

    if settings.threads is None:  # share out the replica's CPUs, not the machine's cores
        workers, threads = settings.worker_layout(cores=int(cpus_per_replica))
        settings = settings.model_copy(update={"workers": workers, "threads": threads})
    deployment = serve.deployment(
        name=DEPLOYMENT_NAME,
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus_per_replica},
    )(serve.ingress()(EmbedlabReplica))
    return deployment.bind(settings, cache_url)


def run_serve(
    settings: Any,
    replicas: int,
    address: str | None = None,
    cpus_per_replica: float = 1.0,
    cache_url: str | None = None,
    blocking: bool = True,
) -> None:
    """Start (or join) Ray, start Serve's proxy on ``settings.host:settings.port`` and deploy the replicas.

    With ``blocking`` it serves until Ctrl-C; otherwise it returns once every replica is ready.

    Raises:
        ClusterError: Ray cannot be started or reached, or the deployment failed to start.
        ConfigError: as :func:`build_deployment`.
    """
    application = build_deployment(settings, replicas, cpus_per_replica, cache_url)
    ensure_ray(address)
    import_ray()
    from ray import serve

    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(application, name=DEPLOYMENT_NAME, route_prefix="/", blocking=blocking)
    except Exception as exc:  # RayServeException, RuntimeError from a replica that failed to start...
        raise ClusterError(f"Ray Serve could not start {replicas} embedlab replicas: {exc}") from exc
