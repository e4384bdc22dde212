"""docs/integrations.md, run: the page cannot drift from what the clients and the server really do.

- Every ```python block is executed as the script it is (a fresh namespace, its own imports) against real
  servers on 127.0.0.1, its ``BASE_URL`` pointed at them: the page's embedding server (the real default
  model, ``--api-key sk-local --model-alias text-embedding-3-small``) for port 8000, and a tiny random
  cross-encoder served as ``bge-reranker-base`` with the same key for port 8001. What each block computes
  is checked (vectors against ``embedlab.load().embed`` of the same texts, rerank scores against
  sentence-transformers' ``CrossEncoder.predict``) by the check registered for its heading; a block
  without a check, or a check without its block, fails.
- Every ```http block (the requests Dify's OpenAI-API-compatible plugin sends) is posted verbatim and its
  answer read the way the plugin reads it.
- Every ``embedlab`` command line in a ```bash block is parsed by the CLI (not run).

The clients are the real ones: openai, langchain-openai (tiktoken's vocabulary from the ``tiktoken_offline``
fixture), llama-index, huggingface_hub (its offline mode switched off for the client only, as in
test_tei_client.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from liveserver import LiveServer, live_server

from embedlab import DEFAULT_MODEL
from embedlab.engine.vector_precision import quantize
from embedlab.server import ServerSettings, create_app

pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
KEY = "sk-local"
ALIAS = "text-embedding-3-small"
RERANKER = "bge-reranker-base"
#: the page's addresses, and which test server each one means
EMBEDDING_URLS = ("http://127.0.0.1:8000", "http://host.docker.internal:8000")
RERANK_URLS = ("http://127.0.0.1:8001", "http://host.docker.internal:8001")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the page: its language, text, the heading above it and the paragraph after it."""

    lang: str
    code: str
    heading: str
    after: str


def read_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```") and line.strip() != "```":
            end = lines.index("```", i + 1)
            after: list[str] = []
            for rest in lines[end + 1 :]:
                if not rest.strip() and after:
                    break
                if rest.strip():
                    after.append(rest)
            blocks.append(Block(line[3:].strip(), "\n".join(lines[i + 1 : end]) + "\n", heading, " ".join(after)))
            i = end
        i += 1
    return blocks


BLOCKS = read_blocks(PAGE.read_text(encoding="utf-8"))


def blocks_of(lang: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang == lang]


# --------------------------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def embedding_server(default_model: Any) -> Iterator[LiveServer]:
    """The page's ``embedlab serve --api-key sk-local --model-alias text-embedding-3-small``."""
    settings = ServerSettings(api_key=KEY, model_aliases=[ALIAS])
    with live_server(create_app(settings, embedder=default_model)) as server:
        yield server


@pytest.fixture(scope="module")
def rerank_server(tiny_cross_encoder_dir: Path) -> Iterator[LiveServer]:
    """A reranker under the page's name and key (a tiny random cross-encoder: scores are checked, not quality)."""
    settings = ServerSettings(
        model=str(tiny_cross_encoder_dir), backend="torch", api_key=KEY, served_model_name=RERANKER
    )
    with live_server(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def open_server(default_model: Any) -> Iterator[LiveServer]:
    """The embedding server without ``--api-key``."""
    with live_server(create_app(ServerSettings(model_aliases=[ALIAS]), embedder=default_model)) as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def _clients_ready(tiktoken_offline: Path) -> Iterator[None]:
    """What the page asks of the reader's environment: tiktoken's vocabulary (seeded), HF_HUB_OFFLINE unset for
    huggingface_hub; third-party modules imported once here, so their import-time deprecation warnings do not
    count against the snippets."""
    import huggingface_hub.constants

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import langchain_openai  # noqa: F401
        import llama_index.embeddings.openai_like  # noqa: F401
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        yield


@dataclass
class Run:
    """A python block after it ran: its namespace, what it printed, and what the embedding server counted."""

    ns: dict[str, Any]
    stdout: str
    token_id_inputs: float
    context: Context


@dataclass
class Context:
    default_model: Any
    embedding_server: LiveServer
    rerank_server: LiveServer
    reranker_dir: Path
    urls: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def context(
    default_model: Any, embedding_server: LiveServer, rerank_server: LiveServer, tiny_cross_encoder_dir: Path
) -> Context:
    urls = {url: embedding_server.url for url in EMBEDDING_URLS} | {url: rerank_server.url for url in RERANK_URLS}
    return Context(default_model, embedding_server, rerank_server, tiny_cross_encoder_dir, urls)


def localise(code: str, urls: dict[str, str]) -> str:
    """The page's text with its addresses replaced by the test servers'."""
    for page_url, real in urls.items():
        code = code.replace(page_url, real)
    return code


def token_id_inputs(server: LiveServer) -> float:
    """Inputs the server received as token ids so far (its own Prometheus counter)."""
    labels = {"model": DEFAULT_MODEL, "kind": "token_ids"}
    return float(server.state.metrics.registry.get_sample_value("embedlab_inputs_total", labels) or 0.0)


def run_block(block: Block, context: Context) -> Run:
    code = localise(block.code, context.urls)
    assert code != block.code or "BASE_URL" not in code, "a block with BASE_URL must use one of the page's servers"
    before = token_id_inputs(context.embedding_server)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"{PAGE.name}: {block.heading}", "exec"), namespace)
    return Run(namespace, out.getvalue(), token_id_inputs(context.embedding_server) - before, context)


# ------------------------------------------------------------------------------------ checks per block


def close(got: Any, expected: Any, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=np.float32), expected, atol=atol)


def cross_encoder_scores(path: Path, query: str, documents: list[str]) -> np.ndarray:
    from sentence_transformers import CrossEncoder

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Implicit dimension choice for softmax", UserWarning)
        return np.asarray(CrossEncoder(str(path), device="cpu").predict([(query, d) for d in documents]))


def check_settings(run: Run) -> None:
    ns = run.ns
    assert ns["names"] == [DEFAULT_MODEL, "all-MiniLM-L6-v2", ALIAS]
    assert (ns["dim"], ns["context_size"], ns["max_chunks"]) == (384, 256, 2048)
    assert ns["context_size"] == run.context.default_model.spec.max_tokens


def check_embeddings(run: Run, *, token_ids: bool | None = None) -> None:
    ns, model = run.ns, run.context.default_model
    close(ns["vectors"], model.embed(ns["texts"]))
    if "query_vector" in ns:
        close([ns["query_vector"]], model.embed(["Where is the cat?"]))
    if token_ids is not None:  # they did arrive as token ids, or as strings
        assert run.token_id_inputs == (len(ns["texts"]) + 1 if token_ids else 0)


def check_langchain_raw(run: Run) -> None:
    check_embeddings(run, token_ids=False)
    model, long_text = run.context.default_model, run.ns["long_text"]
    assert int(model.count_tokens([long_text])[0]) > 2 * model.spec.max_tokens
    windowed = model.embed([long_text], long_input="chunk")
    close([run.ns["long_vector"]], windowed)
    assert not np.allclose(windowed, model.embed([long_text]), atol=1e-3)  # the windows did change the vector


def check_openai(run: Run) -> None:
    ns, model = run.ns, run.context.default_model
    check_embeddings(run)
    close(ns["floats"], model.embed(ns["texts"]))
    short = np.asarray(ns["short"], dtype=np.float32)
    assert short.shape == (3, 128)
    close(short, model.embed(ns["texts"], dimensions=128))
    served = np.asarray(ns["vectors"], dtype=np.float32)  # the server's own float32 (base64): exact
    np.testing.assert_array_equal(ns["int8"], quantize(served, "int8"))
    assert ns["binary"].shape == (3, 48)
    np.testing.assert_array_equal(ns["binary"], quantize(served, "binary"))


def check_tei_client(run: Run) -> None:
    ns, model = run.ns, run.context.default_model
    assert ns["vectors"].dtype == np.float32 and ns["vectors"].shape == (3, 384)
    check_embeddings(run)
    close(ns["short"], model.embed(ns["texts"], dimensions=128, normalize=True))


def check_tei_rerank(run: Run) -> None:
    ns = run.ns
    expected = cross_encoder_scores(run.context.reranker_dir, ns["query"], ns["texts"])
    assert run.ns["answer"].status_code == 200
    assert [item["index"] for item in ns["ranked"]] == list(np.argsort(-expected, kind="stable"))
    close([item["score"] for item in ns["ranked"]], np.sort(expected)[::-1])
    assert [item["text"] for item in ns["ranked"]] == [ns["texts"][item["index"]] for item in ns["ranked"]]
    assert run.stdout.splitlines() == [f"{round(item['score'], 4)} {item['text']}" for item in ns["ranked"]]


def check_v1_rerank(run: Run) -> None:
    ns = run.ns
    expected = cross_encoder_scores(run.context.reranker_dir, ns["query"], ns["documents"])
    order = list(np.argsort(-expected, kind="stable"))[:2]
    assert [r["index"] for r in ns["results"]] == order
    close([r["relevance_score"] for r in ns["results"]], expected[order])
    assert ns["best"] == [ns["documents"][i] for i in order]
    assert [r["document"]["text"] for r in ns["results"]] == ns["best"]


def check_chinese_tokens(run: Run) -> None:
    text = run.ns["text"]
    encoding = run.context.default_model.tokenizer.encode(text, add_special_tokens=False)
    unknown = [
        text[start:stop]
        for token, (start, stop) in zip(encoding.tokens, encoding.offsets, strict=True)
        if token == "[UNK]"
    ]
    assert run.ns["unknown"] == unknown and len(unknown) > len(text) / 2


CHECKS: dict[str, Callable[[Run], None]] = {
    "The server these examples talk to": check_settings,
    "`OpenAIEmbeddings` with its defaults: token ids": lambda run: check_embeddings(run, token_ids=True),
    "`OpenAIEmbeddings` sending raw texts": check_langchain_raw,
    "LlamaIndex": lambda run: check_embeddings(run, token_ids=False),
    "The openai client": check_openai,
    "TEI clients": check_tei_client,
    "Rerank over plain HTTP": lambda run: (check_v1_rerank if "documents" in run.ns else check_tei_rerank)(run),
    "When the default model is the wrong choice": check_chinese_tokens,
}


def test_every_python_block_has_its_check() -> None:
    headings = [b.heading for b in blocks_of("python")]
    assert sorted(set(headings)) == sorted(CHECKS)
    assert len(blocks_of("http")) == 3 and len(blocks_of("bash")) >= 4


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{i}-{b.heading}") for i, b in enumerate(blocks_of("python"))])
def test_python_block_runs_and_computes_what_the_page_says(block: Block, context: Context) -> None:
    run = run_block(block, context)
    CHECKS[block.heading](run)
    printed = re.match(r"It prints `([^`]+)`", block.after)
    if printed:  # the page quotes the block's output: it must be the output
        assert run.stdout.strip() == printed.group(1)


# ----------------------------------------------------------------------------------------- Dify requests


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: str


def parse_http(block: Block) -> HttpRequest:
    """An ```http block: request line, headers, blank line, body (sent as the bytes shown)."""
    head, _, body = block.code.partition("\n\n")
    request_line, *header_lines = head.splitlines()
    method, url = request_line.split()
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return HttpRequest(method, url, headers, body.strip())


def send(request: HttpRequest, urls: dict[str, str], **header_changes: str) -> httpx.Response:
    headers = request.headers | header_changes
    return httpx.request(
        request.method, localise(request.url, urls), headers=headers, content=request.body.encode(), timeout=60
    )


def check_dify_embedding(answer: httpx.Response, body: dict[str, Any], model: Any) -> None:
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert "model" in result  # older plugin versions' validation looks for it
    close([d["embedding"] for d in result["data"]], model.embed(body["input"]))
    usage = result["usage"]
    tokens = usage.get("prompt_tokens") or usage.get("total_tokens")  # what the plugin reads
    assert tokens == usage["total_tokens"] == int(model.count_tokens(body["input"]).sum())


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{i}-{b.heading}") for i, b in enumerate(blocks_of("http"))])
def test_dify_request_posted_verbatim(block: Block, context: Context) -> None:
    request = parse_http(block)
    body = json.loads(request.body)
    answer = send(request, context.urls)
    if request.url.endswith("/v1/embeddings"):
        assert body["model"] == ALIAS and request.headers["Authorization"] == f"Bearer {KEY}"
        check_dify_embedding(answer, body, context.default_model)
    else:
        assert request.url.endswith("/v1/rerank") and body["model"] == RERANKER
        assert answer.status_code == 200, answer.text
        expected = cross_encoder_scores(context.reranker_dir, body["query"], body["documents"])
        results = answer.json()["results"]  # what the plugin reads: index and relevance_score
        assert len(results) == body["top_n"]
        assert [r["index"] for r in results] == list(np.argsort(-expected, kind="stable"))[: body["top_n"]]
        close([r["relevance_score"] for r in results], expected[[r["index"] for r in results]])


def test_dify_with_an_empty_key_field(context: Context, open_server: LiveServer) -> None:
    """The plugin then sends ``Authorization:`` with an empty value: fine without ``--api-key``, 401 with it."""
    request = parse_http(blocks_of("http")[0])
    without_key = send(request, {url: open_server.url for url in EMBEDDING_URLS}, Authorization="")
    check_dify_embedding(without_key, json.loads(request.body), context.default_model)
    refused = send(request, context.urls, Authorization="")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"


# ------------------------------------------------------------------------------------------ command lines


def command_lines(block: Block) -> list[list[str]]:
    """The ``embedlab`` invocations of a bash block, as argument lists (comments and continuations handled)."""
    joined = block.code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "embedlab":
            commands.append(words[1:])
    return commands


def parse_command(argv: list[str]) -> dict[str, Any]:
    """Parse ``embedlab ARGV`` down to the leaf command, as the CLI would, without running it."""
    import typer

    from embedlab.cli import app

    command: Any = typer.main.get_command(app)
    ctx = command.make_context("embedlab", list(argv))
    while hasattr(command, "resolve_command"):  # a group: find the subcommand in what it left unparsed
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return dict(ctx.params)


def test_every_embedlab_command_line_parses() -> None:
    commands = [argv for block in blocks_of("bash") for argv in command_lines(block)]
    assert len(commands) >= 7
    for argv in commands:
        params = parse_command(argv)
        assert params, argv
    served = parse_command(["serve", "--api-key", KEY, "--model-alias", ALIAS])
    assert (served["api_key"], served["model_alias"]) == (KEY, [ALIAS])
