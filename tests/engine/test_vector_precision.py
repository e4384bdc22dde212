"""Output precision as pure functions, against values derived by hand from sentence-transformers' rules."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.engine.postprocess import postprocess
from embedlab.engine.vector_precision import (
    PRECISIONS,
    bytes_per_vector,
    check_precision,
    dequantize,
    quantize,
    ranges_of,
    unit_ranges,
)
from embedlab.errors import ConfigError

# 10 values: the bit precisions pack them into 2 bytes, the second padded with six 0 bits
X = np.array(
    [
        [0.5, -0.25, 0.0, 1.0, -1.0, 0.1, -0.1, 0.3, 0.2, -0.2],
        [-0.5, 0.25, 0.7, -0.3, 0.0, 0.0, 0.9, -0.9, -0.2, 0.6],
    ],
    dtype=np.float32,
)


def test_float32_is_the_input_itself_and_float16_a_cast() -> None:
    assert quantize(X, "float32") is X
    half = quantize(X, "float16")
    assert half.dtype == np.float16 and half.shape == X.shape
    np.testing.assert_array_equal(half, X.astype(np.float16))


def test_ubinary_packs_positive_values_most_significant_bit_first() -> None:
    # row 0: > 0 at 0, 3, 5, 7, 8 → 1001 0101 | 1000 0000 = 149, 128
    # row 1: > 0 at 1, 2, 6, 9    → 0110 0010 | 0100 0000 = 98, 64   (0.0 is not positive)
    packed = quantize(X, "ubinary")
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, [[149, 128], [98, 64]])


def test_binary_is_ubinary_shifted_by_128_into_int8() -> None:
    packed = quantize(X, "binary")
    assert packed.dtype == np.int8
    np.testing.assert_array_equal(packed, [[21, 0], [-30, -64]])


def test_bits_of_a_width_that_is_a_multiple_of_8() -> None:
    x = np.array([[1, -1, 1, -1, 1, -1, 1, -1, -1, -1, -1, -1, -1, -1, -1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(quantize(x, "ubinary"), [[0b10101010, 0b00000001]])


def test_uint8_and_int8_with_the_default_unit_ranges() -> None:
    # step = 2/255; level = clip(floor((x + 1) / step), 0, 255)
    x = np.array([[-1.0, 1.0, 0.0, 0.5, -0.25, 2.0, -3.0]], dtype=np.float32)
    # 127.5 → 127, 191.25 → 191, 95.6 → 95; out of range clipped; the top of the range, 2 / (2/255) in
    # float32 arithmetic, is 254.99998 → 254, as sentence-transformers computes it too
    expected = [0, 254, 127, 191, 95, 255, 0]
    u = quantize(x, "uint8")
    assert u.dtype == np.uint8
    np.testing.assert_array_equal(u, [expected])
    i = quantize(x, "int8")
    assert i.dtype == np.int8
    np.testing.assert_array_equal(i, [[v - 128 for v in expected]])


def test_int8_with_given_ranges_per_dimension_and_a_flat_one() -> None:
    ranges = np.array([[0.0, -2.0, 5.0], [1.0, 2.0, 5.0]], dtype=np.float32)  # third: no spread, step 1
    x = np.array([[0.5, 1.0, 5.0], [1.0, -2.0, 7.5]], dtype=np.float32)
    # dim 0: floor(0.5 * 255) = 127, 1 / (1/255) = 254.99998 in float32 → 254; dim 1: floor(3 * 255 / 4) = 191, 0;
    # dim 2: floor(0) = 0, floor(2.5) = 2
    np.testing.assert_array_equal(quantize(x, "uint8", ranges), [[127, 191, 0], [254, 0, 2]])
    np.testing.assert_array_equal(quantize(x, "int8", ranges), [[-1, 63, -128], [126, -128, -126]])


def test_ranges_of_calibration_vectors_and_their_shape_checks() -> None:
    np.testing.assert_array_equal(ranges_of(X), np.vstack([X.min(axis=0), X.max(axis=0)]))
    with pytest.raises(ConfigError, match="at least 2"):
        ranges_of(X[:1])
    with pytest.raises(ConfigError, match=r"shape \(2, 10\)"):
        quantize(X, "int8", unit_ranges(9))


def test_dequantize_recovers_each_value_within_one_step() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(50, 16)).astype(np.float32)
    for precision in ("int8", "uint8"):
        back = dequantize(quantize(x, precision), precision)  # type: ignore[arg-type]
        assert back.dtype == np.float32
        assert np.all(back <= x + 1e-6) and np.all(x - back < 2 / 255 + 1e-6)
    with pytest.raises(ConfigError):
        dequantize(quantize(x, "binary"), "binary")


def test_bytes_per_vector_matches_the_arrays() -> None:
    for precision in PRECISIONS:
        out = quantize(X, precision)  # type: ignore[arg-type]
        assert out[0].nbytes == bytes_per_vector(10, precision)  # type: ignore[arg-type]
    assert [bytes_per_vector(384, p) for p in PRECISIONS] == [1536, 768, 384, 384, 48, 48]  # type: ignore[arg-type]


def test_unknown_precision_names_the_allowed_ones() -> None:
    assert check_precision("int8") == "int8"
    with pytest.raises(ConfigError, match="unknown precision 'int4'; choose one of float32, float16, int8"):
        check_precision("int4")


def test_postprocess_quantises_after_truncating_and_normalising() -> None:
    vectors = np.array([[3.0, -4.0, 100.0], [-1.0, 0.0, -100.0]], dtype=np.float32)
    # truncated to 2 → [0.6, -0.8], [-1, 0]; bits of > 0: 10, 00
    np.testing.assert_array_equal(postprocess(vectors, 2, True, "ubinary"), [[0b10000000], [0]])
    np.testing.assert_array_equal(postprocess(vectors, 2, True, "uint8"), [[203, 25], [0, 127]])


def test_same_codes_as_the_installed_sentence_transformers() -> None:
    st = pytest.importorskip("sentence_transformers.util.quantization")
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.1, size=(64, 45)).astype(np.float32)
    ranges = ranges_of(x[:32])
    for precision in ("int8", "uint8", "binary", "ubinary"):
        theirs = st.quantize_embeddings(x, precision, ranges=ranges)
        ours = quantize(x, precision, ranges)  # type: ignore[arg-type]
        assert ours.dtype == theirs.dtype
        np.testing.assert_array_equal(ours, theirs)
