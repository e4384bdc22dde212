"""The ``precision`` extension on a real server (tiny model) on loopback: JSON and base64 of every precision.

Each answer is decoded and compared with ``quantize()`` of the float32 vectors the same server gives for
the same texts; int8 / uint8 ranges from a calibration file are checked against ranges computed by hand.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from liveserver import LiveServer, live_server, tiny_settings

from embedlab.engine.embedder import Embedder
from embedlab.engine.vector_precision import PRECISIONS, Precision, quantize
from embedlab.errors import DataFileError
from embedlab.server import create_app

TEXTS = ["the cat sat on the mat", "a dog", "stock markets fell sharply today", "naïve café — 東京"]
CALIBRATION = [
    "a short line",
    "cats and dogs living together",
    "the quarterly report shows a loss",
    "rain is expected tomorrow afternoon",
    "she plays the violin in an orchestra",
    "the recipe needs two eggs and flour",
]
#: numpy dtype of each precision's base64 bytes (docs/serve.md, *Output precision*)
WIRE_DTYPES = {"float32": "<f4", "float16": "<f2", "int8": "i1", "uint8": "u1", "binary": "i1", "ubinary": "u1"}


@pytest.fixture(scope="module")
def client(tiny_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=tiny_server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def calibration_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibration") / "texts.txt"
    path.write_text("\n".join([*CALIBRATION[:3], "", *CALIBRATION[3:]]) + "\n", encoding="utf-8")  # one blank line
    return path


@pytest.fixture(scope="module")
def calibrated(tiny_embedder: Embedder, calibration_file: Path) -> Iterator[httpx.Client]:
    app = create_app(tiny_settings(int8_calibration_texts=calibration_file), embedder=tiny_embedder)
    with live_server(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text[:300]
    return answer


def floats(client: httpx.Client, **options: Any) -> np.ndarray:
    """The server's float32 vectors of TEXTS, exactly (read from base64)."""
    body = {"input": TEXTS, "encoding_format": "base64", **options}
    data = post(client, "/v1/embeddings", body).json()["data"]
    return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in data])


def openai_vectors(client: httpx.Client, precision: str, encoding_format: str, **options: Any) -> np.ndarray:
    body = {"input": TEXTS, "precision": precision, "encoding_format": encoding_format, **options}
    data = post(client, "/v1/embeddings", body).json()["data"]
    if encoding_format == "base64":
        return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), dtype=WIRE_DTYPES[precision]) for d in data])
    return np.asarray([d["embedding"] for d in data])


def assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    """Equal values; JSON float32 is the shortest text that reads back to the float32, so compare as float32."""
    assert got.shape == expected.shape
    if expected.dtype == np.float32:
        np.testing.assert_array_equal(got.astype(np.float32), expected)
    else:  # float16 JSON is the half's exact value; integers are integers
        np.testing.assert_array_equal(got.astype(np.float64), expected.astype(np.float64))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_in_json_and_base64_is_quantize_of_the_servers_floats(
    client: httpx.Client, precision: Precision
) -> None:
    expected = quantize(floats(client), precision)
    as_json = openai_vectors(client, precision, "float")
    assert_same(as_json, expected)
    if precision in ("float32", "float16"):
        assert as_json.dtype == np.float64  # JSON floats
    else:
        assert as_json.dtype.kind == "i"  # JSON integers, never 3.0
    as_base64 = openai_vectors(client, precision, "base64")
    assert_same(as_base64, expected)
    assert as_base64.dtype == np.dtype(WIRE_DTYPES[precision])
    tei = np.asarray(post(client, "/embed", {"inputs": TEXTS, "precision": precision}).json())
    assert_same(tei, expected)


def test_float16_json_carries_the_half_value_itself(client: httpx.Client) -> None:
    half = quantize(floats(client), "float16")
    text = client.post("/v1/embeddings", json={"input": TEXTS[:1], "precision": "float16"}).text
    exact = [repr(float(value)) for value in half[0]]  # the exact decimal of a float16, e.g. 0.0999755859375
    assert all(value in text for value in exact)


def test_binary_of_fewer_dimensions_packs_into_ceil_d_over_8_bytes(client: httpx.Client) -> None:
    expected = quantize(floats(client, dimensions=20), "binary")
    assert expected.shape == (len(TEXTS), 3)
    for encoding_format in ("float", "base64"):
        assert_same(openai_vectors(client, "binary", encoding_format, dimensions=20), expected)
    packed = openai_vectors(client, "ubinary", "base64", dimensions=20)
    bits = np.unpackbits(packed, axis=1)[:, :20]  # the first value is the most significant bit
    np.testing.assert_array_equal(bits, (floats(client, dimensions=20) > 0).astype(np.uint8))


def test_calibration_file_sets_int8_ranges_per_dimensions_and_normalize(
    calibrated: httpx.Client, tiny_embedder: Embedder, calibration_file: Path
) -> None:
    info = calibrated.get("/info").json()["models"][0]
    assert info["int8_ranges"] == {
        "source": "calibration",
        "path": str(calibration_file),
        "texts": len(CALIBRATION),
        "skipped": 1,
    }
    for dimensions, normalize in ((None, None), (12, None), (12, False)):
        options = {k: v for k, v in (("dimensions", dimensions), ("normalize", normalize)) if v is not None}
        by_hand = tiny_embedder.embed(CALIBRATION, **options)  # truncated, re-normalised as the request's
        ranges = np.vstack([by_hand.min(axis=0), by_hand.max(axis=0)])
        request_floats = floats(calibrated, **options)
        for precision in ("int8", "uint8"):
            expected = quantize(request_floats, precision, ranges)
            for encoding_format in ("float", "base64"):
                assert_same(openai_vectors(calibrated, precision, encoding_format, **options), expected)
            if normalize is None:  # [-1, 1] fits normalised vectors only
                assert not np.array_equal(expected, quantize(request_floats, precision))


def test_default_ranges_are_reported_and_refuse_unnormalised_int8(client: httpx.Client) -> None:
    info = client.get("/info").json()
    model = info["models"][0]
    assert model["int8_ranges"] == {"source": "default", "range": [-1.0, 1.0]}
    assert info["precisions"] == list(PRECISIONS) and model["defaults"]["precision"] == "float32"
    refused = client.post("/v1/embeddings", json={"input": TEXTS, "precision": "int8", "normalize": False})
    assert refused.status_code == 400
    assert "--int8-calibration-texts" in refused.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/embeddings", "/embed"])
def test_unknown_precision_is_a_400_naming_it_and_the_allowed_ones(client: httpx.Client, path: str) -> None:
    body = {"input": "a", "precision": "float8"} if path == "/v1/embeddings" else {"inputs": "a", "precision": "int4"}
    answer = client.post(path, json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "precision" and body["precision"] in error["message"]
    for allowed in PRECISIONS:
        assert f"'{allowed}'" in error["message"]


def test_a_calibration_file_of_fewer_than_two_texts_fails_the_start(tiny_embedder: Embedder, tmp_path: Path) -> None:
    one = tmp_path / "one.txt"
    one.write_text("only one text\n\n", encoding="utf-8")
    with pytest.raises(DataFileError, match="at least 2 texts, found 1"):
        create_app(tiny_settings(int8_calibration_texts=one), embedder=tiny_embedder)
    with pytest.raises(DataFileError, match="no such file"):
        create_app(tiny_settings(int8_calibration_texts=tmp_path / "missing.txt"), embedder=tiny_embedder)


def test_openai_client_default_base64_and_floats_are_unchanged(tiny_server: LiveServer) -> None:
    from openai import OpenAI

    with httpx.Client(base_url=tiny_server.url, timeout=30) as http:
        expected = floats(http)
    client = OpenAI(base_url=tiny_server.url + "/v1", api_key="unused", max_retries=0)
    default = client.embeddings.create(model="tiny", input=TEXTS)  # the client asks for base64 and decodes it
    np.testing.assert_array_equal(np.asarray([d.embedding for d in default.data], dtype=np.float32), expected)
    as_floats = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    np.testing.assert_array_equal(np.asarray([d.embedding for d in as_floats.data], dtype=np.float32), expected)
    extension = {"precision": "int8"}
    ints = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float", extra_body=extension)
    assert_same(np.asarray([d.embedding for d in ints.data]), quantize(expected, "int8"))
