from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embedlab.errors import DataFileError, OutputError
from embedlab.io.readers import read_texts
from embedlab.io.writers import VectorWriter


def test_txt_one_text_per_line(tmp_path: Path) -> None:
    file = tmp_path / "t.txt"
    file.write_text("first\nsecond line\n")
    table = read_texts(file)
    assert table.texts == ["first", "second line"] and table.ids == ["0", "1"]


def test_txt_empty_line_is_an_error_unless_skipped(tmp_path: Path) -> None:
    file = tmp_path / "t.txt"
    file.write_text("first\n\nthird\n")
    with pytest.raises(DataFileError, match="line 2 is empty"):
        read_texts(file)
    table = read_texts(file, skip_empty=True)
    assert table.texts == ["first", "third"] and table.ids == ["0", "2"] and table.skipped == 1


def test_jsonl_with_fields(tmp_path: Path) -> None:
    file = tmp_path / "t.jsonl"
    file.write_text('{"id": "a", "body": "x y"}\n{"id": "b", "body": "z"}\n')
    table = read_texts(file, text_field="body")
    assert table.ids == ["a", "b"] and table.texts == ["x y", "z"]
    with pytest.raises(DataFileError, match=r"no field 'text'.*id, body"):
        read_texts(file)


def test_jsonl_bad_line_and_non_text(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(DataFileError, match="line 2 is not valid JSON"):
        read_texts(bad)
    numbers = tmp_path / "n.jsonl"
    numbers.write_text('{"text": 5}\n')
    with pytest.raises(DataFileError, match="int, not text"):
        read_texts(numbers)


def test_csv_and_parquet(tmp_path: Path) -> None:
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('doc,text\n1,"hello, world"\n2,bye\n')
    assert read_texts(csv_file, id_field="doc").texts == ["hello, world", "bye"]
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["p", "q"], "id": [10, 11]}), parquet)
    table = read_texts(parquet)
    assert table.texts == ["p", "q"] and table.ids == ["10", "11"]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.txt", None, "no such file"),
        ("t.docx", b"x", "unsupported input type"),
        ("empty.txt", b"", "holds no texts"),
        ("latin.txt", "caf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("broken.parquet", b"not parquet", "cannot read parquet"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, name: str, content: bytes | None, fragment: str) -> None:
    file = tmp_path / name
    if content is not None:
        file.write_bytes(content)
    with pytest.raises(DataFileError, match=fragment):
        read_texts(file)


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".jsonl"])
def test_writers_round_trip(tmp_path: Path, suffix: str) -> None:
    vectors = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = tmp_path / f"v{suffix}"
    writer = VectorWriter(out, n_rows=5, dim=4)
    writer.write(["a", "b"], vectors[:2])
    writer.write(["c", "d", "e"], vectors[2:])
    assert not out.exists()  # atomic: only the partial file exists before close
    writer.close()
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out), vectors)
    elif suffix == ".parquet":
        table = pq.read_table(out)
        assert table.column("id").to_pylist() == ["a", "b", "c", "d", "e"]
        np.testing.assert_array_equal(np.array(table.column("vector").to_pylist(), dtype=np.float32), vectors)
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e"]
        np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), vectors, rtol=1e-6)


def test_writer_refuses_to_overwrite_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "v.npy"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        VectorWriter(out, n_rows=1, dim=2)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="unsupported output type"):
        VectorWriter(tmp_path / "v.csv", n_rows=1, dim=2)
    writer = VectorWriter(tmp_path / "w.npy", n_rows=3, dim=2)
    writer.write(["a"], np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(OutputError, match="wrote 1 rows, expected 3"):
        writer.close()
    assert not (tmp_path / "w.npy").exists()
    assert not list(tmp_path.glob(".w.npy.partial*"))
