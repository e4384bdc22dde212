"""Vectors on the wire: JSON numbers or base64 of their raw bytes, for each output precision.

The vectors come from the engine already in the request's precision
(:func:`~embedlab.engine.vector_precision.quantize`); this module only writes them out:

==========  =======================================  ===================================================
precision   JSON (``encoding_format: float``)         base64: bytes per vector (``d`` values)
==========  =======================================  ===================================================
float32     numbers (the float32 value, shortest      4·d, little-endian IEEE float32
            text that reads back to it)
float16     numbers, the exact value of the half      2·d, little-endian IEEE float16
            (e.g. 0.0999755859375 for 0.1)
int8        integers -128..127                        d, one two's-complement byte each
uint8       integers 0..255                           d, one byte each
binary      integers -128..127, ceil(d/8) per         ceil(d/8): each byte the int8 ``packed - 128``
            vector (``packed - 128``)                 (the packed bits with the top bit flipped)
ubinary     integers 0..255, ceil(d/8) per vector     ceil(d/8): the packed bits, first value in the
                                                      most significant bit of the first byte
==========  =======================================  ===================================================

So ``numpy.frombuffer(base64.b64decode(s), dtype)`` with dtype ``<f4``, ``<f2``, ``i1``, ``u1``,
``i1``, ``u1`` gives back exactly the integers / floats the JSON form carries.
"""

from __future__ import annotations

import base64

import numpy as np

from embedlab.engine.vector_precision import EmbeddingArray


def json_vectors(vectors: EmbeddingArray) -> EmbeddingArray:
    """``vectors`` (n, width) as orjson should write them: float16 widened exactly to float64, others as they are.

    orjson writes a float16 as the shortest text of its float32 widening (0.099975586 for float16(0.1)),
    which is not the half value itself; a float64 holds every float16 exactly and prints it exactly.
    """
    if vectors.dtype == np.float16:
        return vectors.astype(np.float64)
    return vectors


def base64_vectors(vectors: EmbeddingArray) -> list[str]:
    """Each row of ``vectors`` (n, width) as base64 of its raw little-endian bytes (see the module's table)."""
    little = np.ascontiguousarray(vectors.astype(vectors.dtype.newbyteorder("<"), copy=False))
    return [base64.b64encode(row.tobytes()).decode("ascii") for row in little]
