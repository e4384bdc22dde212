"""Models whose files ship on PyPI: the registry, the multi-piece zip reader, and assembly into the cache."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.errors import ModelLoadError, ModelNotFoundError
from embedlab.models.packaged import (
    PACKAGED_MODELS,
    ConcatenatedFile,
    PackagedModel,
    _extract_folder,
    find_packaged,
    missing_distributions,
    packaged_path,
)
from embedlab.models.resolve import resolve_model


def _split(data: bytes, sizes: list[int], directory: Path) -> list[Path]:
    """``data`` cut into pieces of ``sizes`` bytes (the last takes the rest), written as name.zip.001 …"""
    pieces, start = [], 0
    for index, size in enumerate([*sizes, len(data)], start=1):
        path = directory / f"model.zip.{index:03d}"
        path.write_bytes(data[start : start + size] if index <= len(sizes) else data[start:])
        pieces.append(path)
        start += size
    return pieces


def _zip_folder(folder: Path, inside: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{inside}/{path.relative_to(folder)}")
        for name, content in (extra or {}).items():
            archive.writestr(f"{inside}/{name}", content)
    return buffer.getvalue()


def test_concatenated_file_reads_and_seeks_across_pieces(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    pieces = _split(data, [1000, 3], tmp_path)
    with ConcatenatedFile(pieces) as joined:
        assert joined.read() == data
        joined.seek(998)
        assert joined.read(8) == data[998:1006]  # spans all three pieces
        joined.seek(-5, io.SEEK_END)
        assert joined.read() == data[-5:]
        assert joined.seek(10, io.SEEK_CUR) == len(data) + 10
        assert joined.read(4) == b""


def test_a_zip_in_pieces_is_extracted_into_a_model_that_embeds_like_the_original(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    data = _zip_folder(tiny_bert_dir, "tiny", extra={"desktop.ini": b"[.ShellClassInfo]"})
    pieces = _split(data, [len(data) // 3, len(data) // 3], tmp_path)
    target = _extract_folder(pieces, "tiny", tmp_path / "cache" / "tiny" / "key")
    assert not (target / "desktop.ini").exists()
    assert sorted(p.name for p in target.rglob("*") if p.is_file()) == sorted(
        p.name for p in tiny_bert_dir.rglob("*") if p.is_file()
    )
    assert [p.name for p in target.parent.iterdir()] == ["key"]  # no partial folder left behind
    texts = ["the cat sat on the mat", "a dog"]
    original = embedlab.load(str(tiny_bert_dir), backend="torch").embed(texts)
    assembled = embedlab.load(str(target), backend="torch").embed(texts)
    np.testing.assert_array_equal(original, assembled)


def test_pieces_that_are_not_a_model_folder_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other/readme.txt", "not a model")
    pieces = _split(buffer.getvalue(), [10], tmp_path)
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        _extract_folder(pieces, "other", tmp_path / "out")
    (tmp_path / "cut").mkdir()
    truncated = _split(buffer.getvalue()[:-30], [10], tmp_path / "cut")
    with pytest.raises(ModelLoadError, match="cannot assemble"):
        _extract_folder(truncated, "other", tmp_path / "out2")


def test_registry_names_and_aliases() -> None:
    mpnet = find_packaged("all-mpnet-base-v2")
    assert mpnet is not None and mpnet.name == "sentence-transformers/all-mpnet-base-v2"
    assert find_packaged("sentence-transformers/all-mpnet-base-v2") is mpnet
    assert find_packaged("all-MiniLM-L6-v2") is PACKAGED_MODELS[0]
    assert find_packaged("BAAI/bge-small-en-v1.5") is None


def test_a_packaged_model_whose_distributions_are_missing_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    absent = PackagedModel(
        name="nobody/pieces",
        aliases=frozenset(),
        distributions=("embedlab-no-such-dist-001", "embedlab-no-such-dist-002"),
        folder_in_zip="pieces",
        install="pip install embedlab-no-such-dist",
    )
    assert missing_distributions(absent) == list(absent.distributions)
    assert packaged_path(absent) is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("embedlab.models.packaged.PACKAGED_MODELS", (absent,))
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("nobody/pieces")
    missing = "embedlab-no-such-dist-001, embedlab-no-such-dist-002"
    assert f"{missing} (not installed: pip install embedlab-no-such-dist)" in str(info.value)


@pytest.mark.slow
def test_mpnet_resolves_offline_from_its_five_pypi_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mpnet = find_packaged("all-mpnet-base-v2")
    assert mpnet is not None
    assert missing_distributions(mpnet) == [], "install the test extra: pip install -e '.[test]'"
    resolved = resolve_model("all-mpnet-base-v2")
    assert resolved.source == "package" and resolved.name == "sentence-transformers/all-mpnet-base-v2"
    assert (resolved.path / "model.safetensors").stat().st_size == 437_971_872
    assert resolve_model("sentence-transformers/all-mpnet-base-v2").path == resolved.path  # assembled once
