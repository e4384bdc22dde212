"""The Ray job's two stages as plain Python (no Ray): reading files into parts, and one actor embedding parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.distributed.ray_stages import PartEmbedder, raise_worker_error, read_file_parts
from embedlab.distributed.shards import part_name, read_parts
from embedlab.engine.loader import load
from embedlab.errors import ClusterError, DataFileError
from embedlab.settings import EngineSettings


def source(path: Path, index: int = 0, prefix_ids: bool = False) -> dict[str, object]:
    return {"file_index": index, "path": str(path), "prefix_ids": prefix_ids}


def test_files_are_cut_into_parts_and_finished_parts_become_markers(tmp_path: Path) -> None:
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"text number {i}\n" for i in range(5)))
    out = tmp_path / "out"
    out.mkdir()
    (out / part_name(3, 1)).write_bytes(b"done")  # the second part exists already
    rows = read_file_parts(
        source(texts, 3, prefix_ids=True),
        output=str(out),
        rows_per_part=2,
        text_field=None,
        id_field=None,
        skip_empty=False,
    )
    assert [row["part"] for row in rows] == [part_name(3, 0), part_name(3, 1), part_name(3, 2)]
    assert rows[0]["texts"] == ["text number 0", "text number 1"] and rows[0]["ids"][0].startswith("texts.txt:")
    assert rows[1]["texts"] == [] and rows[1]["done_rows"] == 2
    assert rows[2]["done_rows"] == 0 and len(rows[2]["texts"]) == 1


def test_unreadable_files_become_error_rows_that_re_raise_with_their_type(tmp_path: Path) -> None:
    (row,) = read_file_parts(
        source(tmp_path / "missing.txt"),
        output=str(tmp_path),
        rows_per_part=2,
        text_field=None,
        id_field=None,
        skip_empty=False,
    )
    assert row["error"].startswith("DataFileError\t")
    with pytest.raises(DataFileError, match=r"missing\.txt"):
        raise_worker_error(row["error"])
    with pytest.raises(ClusterError, match="OSError: disk on fire"):
        raise_worker_error("OSError\tdisk on fire")


def test_an_actor_embeds_and_writes_parts_as_the_local_path_would(tiny_bert_dir: Path, tmp_path: Path) -> None:
    settings = EngineSettings(model=str(tiny_bert_dir), backend="torch", threads=1)
    actor = PartEmbedder(settings, str(tmp_path), {"prompt": "query: "})
    texts = ["the cat sat", "a dog"]
    stats = actor({"part": [part_name(0, 0)], "ids": [["a", "b"]], "texts": [texts], "error": [""], "done_rows": [0]})
    assert stats["error"] == [""] and stats["texts"] == [2]
    ids, vectors = read_parts(tmp_path)
    assert ids == ["a", "b"]
    np.testing.assert_allclose(vectors, load(settings=settings).embed(texts, prompt="query: "), atol=1e-6)


def test_an_actor_with_bad_options_reports_them_per_part(tiny_bert_dir: Path, tmp_path: Path) -> None:
    settings = EngineSettings(model=str(tiny_bert_dir), backend="torch", threads=1)
    actor = PartEmbedder(settings, str(tmp_path), {"dimensions": 10_000})
    stats = actor({"part": [part_name(0, 0)], "ids": [["a"]], "texts": [["x"]], "error": [""], "done_rows": [0]})
    assert stats["error"][0].startswith("ConfigError\t") and "dimensions" in stats["error"][0]
