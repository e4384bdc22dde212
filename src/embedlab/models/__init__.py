"""Model facts: resolving a name to files, the spec read from those files, pooling."""

from embedlab.models.resolve import DEFAULT_MODEL, ResolvedModel, resolve_model
from embedlab.models.spec import ModelSpec, PoolingMode, read_spec

__all__ = ["DEFAULT_MODEL", "ModelSpec", "PoolingMode", "ResolvedModel", "read_spec", "resolve_model"]
