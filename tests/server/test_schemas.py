"""Request bodies: the four ``input`` shapes, strict field types, and errors that name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from embedlab.errors import EmptyInputError, RequestTooLargeError
from embedlab.server.errors import MalformedBodyError, RequestSchemaError
from embedlab.server.schemas import (
    EmbeddingsRequest,
    ParsedInput,
    TeiEmbedRequest,
    TokenizeRequest,
    check_batch_size,
    parse_input,
    validate_body,
)


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def schema_error(model: type[BaseModel], data: Any, allow_unknown: bool = False) -> RequestSchemaError:
    with pytest.raises(RequestSchemaError) as caught:
        validate_body(model, body(data), allow_unknown=allow_unknown)
    return caught.value


@pytest.mark.parametrize(
    ("value", "texts", "token_ids", "single"),
    [
        ("a dog", ["a dog"], None, True),
        (["a", "b c"], ["a", "b c"], None, False),
        ([15339, 1917], None, [[15339, 1917]], True),
        ([[1, 2], [3], []], None, [[1, 2], [3], []], False),
        ([], [], None, False),
    ],
    ids=["string", "strings", "token ids", "lists of token ids", "empty list"],
)
def test_the_four_input_shapes(
    value: Any, texts: list[str] | None, token_ids: list[list[int]] | None, single: bool
) -> None:
    parsed = parse_input(value)
    assert parsed == ParsedInput(texts, token_ids, single)
    assert len(parsed) == len(texts if texts is not None else token_ids or [])


def test_parsed_lists_are_copies() -> None:
    given = [[1, 2]]
    parsed = parse_input(given)
    given[0].append(3)
    assert parsed.token_ids == [[1, 2]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "got null"),
        (3, "got 3 (integer)"),
        ({"text": "a"}, 'got {"text":"a"} (object)'),
        ([True, False], "input 0 is true (boolean)"),  # a bool is not a token id
        ([1.5], "input 0 is 1.5 (number)"),
        ([None], "input 0 is null"),
        (["a", 3], "input 1 is 3 (integer), but input 0 is a string"),
        ([7, "a"], 'input 1 is "a" (string), but input 0 is a token id'),
        ([7, True], "input 1 is true (boolean), but input 0 is a token id"),
        ([[1], 2], "input 1 is 2 (integer); a list of token-id lists holds only lists"),
        ([[1, 2], [3, 4.0]], "input 1 item 1 is 4.0 (number); nested lists must hold token ids"),
        ([["a"]], "send a flat list of strings"),
    ],
)
def test_bad_input_shapes_name_the_first_bad_item(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_input(value)
    assert str(caught.value).startswith("input") and message in str(caught.value)


def test_a_full_openai_body_parses() -> None:
    request = validate_body(
        EmbeddingsRequest,
        body(
            {
                "input": ["a", "b"],
                "model": "text-embedding-3-small",
                "encoding_format": "base64",
                "dimensions": 8,
                "user": "someone",
                "truncate": False,
                "long_input": "chunk",
                "prompt_name": "query",
                "input_type": "document",
                "normalize": False,
            }
        ),
    )
    assert request.input == ParsedInput(["a", "b"], None, single=False)
    assert (request.model, request.encoding_format, request.dimensions) == ("text-embedding-3-small", "base64", 8)
    assert (request.truncate, request.long_input, request.input_type, request.normalize) == (
        False,
        "chunk",
        "document",
        False,
    )


def test_defaults_of_a_minimal_body() -> None:
    request = validate_body(EmbeddingsRequest, b'{"input": [15339, 1917]}')
    assert request.input == ParsedInput(None, [[15339, 1917]], single=True)
    assert request.encoding_format == "float"
    assert None is request.model is request.dimensions is request.truncate is request.long_input
    assert None is request.normalize is request.prompt_name is request.input_type
    assert validate_body(EmbeddingsRequest, b'{"input": "a", "model": null}').model is None


@pytest.mark.parametrize(
    ("data", "param", "message"),
    [
        ({"model": "tiny"}, "input", "field 'input' is required"),
        ({"input": "a", "temperature": 0.2}, "temperature", "unknown field 'temperature' (got 0.2 (number))"),
        ({"input": None}, "input", "got null"),
        ({"input": [1, "a"]}, "input", 'input 1 is "a" (string), but input 0 is a token id'),
        ({"input": "a", "encoding_format": "hex"}, "encoding_format", "encoding_format: Input should be 'float' or"),
        (
            {"input": "a", "dimensions": "8"},
            "dimensions",
            'dimensions: Input should be a valid integer; got "8" (string)',
        ),
        ({"input": "a", "dimensions": 8.0}, "dimensions", "; got 8.0 (number)"),  # strict: no float → int
        ({"input": "a", "dimensions": True}, "dimensions", "; got true (boolean)"),  # strict: no bool → int
        ({"input": "a", "model": 4}, "model", "model: Input should be a valid string; got 4 (integer)"),
        (
            {"input": "a", "truncate": "yes"},
            "truncate",
            'truncate: Input should be a valid boolean; got "yes" (string)',
        ),
        ({"input": "a", "normalize": 1}, "normalize", "; got 1 (integer)"),
        ({"input": "a", "long_input": "drop"}, "long_input", "long_input: Input should be 'truncate', 'error' or"),
        ({"input": "a", "input_type": "code"}, "input_type", "input_type: Input should be 'query', 'passage' or"),
    ],
)
def test_schema_errors_name_the_field(data: dict[str, Any], param: str, message: str) -> None:
    error = schema_error(EmbeddingsRequest, data)
    assert error.param == param
    assert message in str(error)
    assert "Value error" not in str(error)  # pydantic's prefix is dropped


def test_bodies_that_are_not_json_objects() -> None:
    with pytest.raises(MalformedBodyError, match="not valid JSON"):
        validate_body(EmbeddingsRequest, b'{"input": ')
    with pytest.raises(MalformedBodyError):
        validate_body(EmbeddingsRequest, b"")
    for data, kind in (([], "[] (array)"), ("a", '"a" (string)'), (3, "3 (integer)"), (None, "null")):
        error = schema_error(EmbeddingsRequest, data)
        assert str(error) == f"the body must be a JSON object, got {kind}" and error.param is None


def test_unknown_fields_can_be_dropped_instead_of_refused() -> None:
    data = {"input": "a", "temperature": 0.2, "dimensions": 4}
    request = validate_body(EmbeddingsRequest, body(data), allow_unknown=True)
    assert request.dimensions == 4 and "temperature" not in request.model_dump()
    assert schema_error(EmbeddingsRequest, {"input": "a", "dimensions": "4"}, allow_unknown=True).param == "dimensions"


def test_tei_body() -> None:
    one = validate_body(TeiEmbedRequest, b'{"inputs": "a dog"}')
    assert (one.inputs, one.normalize, one.truncate, one.dimensions) == ("a dog", True, None, None)
    many = validate_body(
        TeiEmbedRequest, body({"inputs": ["a", "b"], "truncation_direction": "Right", "normalize": False})
    )
    assert (many.inputs, many.truncation_direction, many.normalize) == (["a", "b"], "Right", False)
    assert schema_error(TeiEmbedRequest, {"inputs": "a", "truncation_direction": "left"}).param == (
        "truncation_direction"
    )
    assert str(schema_error(TeiEmbedRequest, {"input": "a"})) == "field 'inputs' is required"
    assert str(schema_error(TeiEmbedRequest, {"inputs": "a", "input": "a"})).startswith(
        "unknown field 'input' (got \"a\" (string)); the fields of this route: inputs, truncate,"
    )


@pytest.mark.parametrize(
    ("model", "data", "param", "message"),
    [
        (
            TeiEmbedRequest,
            {"inputs": ["a", 3]},
            "inputs.1",
            "inputs.1: Input should be a valid string; got 3 (integer)",
        ),
        (TeiEmbedRequest, {"inputs": ["a", "b", ["c"]]}, "inputs.2", '; got ["c"] (array)'),
        (TokenizeRequest, {"input": ["a", None]}, "input.1", "input.1: Input should be a valid string; got null"),
        (TeiEmbedRequest, {"inputs": 5}, "inputs", "inputs: Input should be a valid string or a valid list; got 5"),
    ],
)
def test_a_bad_item_of_a_string_or_list_field_is_named(
    model: type[BaseModel], data: dict[str, Any], param: str, message: str
) -> None:
    error = schema_error(model, data)
    assert error.param == param
    assert message in str(error)


def test_tokenize_body_takes_either_spelling() -> None:
    tei = validate_body(TokenizeRequest, b'{"inputs": ["a", "b"]}')
    openai = validate_body(TokenizeRequest, b'{"input": "a", "add_special_tokens": false}')
    assert (tei.inputs, tei.input, tei.add_special_tokens) == (["a", "b"], None, True)
    assert (openai.inputs, openai.input, openai.add_special_tokens) == (None, "a", False)
    assert schema_error(TokenizeRequest, {"input": "a", "add_special_tokens": "no"}).param == "add_special_tokens"


def test_batch_size_limits() -> None:
    check_batch_size(1, 1)
    check_batch_size(2048, 2048)
    with pytest.raises(EmptyInputError, match="empty list"):
        check_batch_size(0, 2048)
    with pytest.raises(RequestTooLargeError, match="input has 2049 items; this server takes at most 2048"):
        check_batch_size(2049, 2048)
