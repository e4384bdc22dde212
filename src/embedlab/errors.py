"""The exception tree of embedlab.

Every error embedlab raises on purpose derives from :class:`EmbedlabError`, so callers can catch one
type. Only the HTTP layer turns these into status codes and only the CLI turns them into exit codes.

::

    EmbedlabError
    ├── ConfigError                 a setting or option has an invalid value
    ├── ModelError
    │   ├── ModelNotFoundError      no local path, cache entry, package or hub download matched
    │   ├── ModelLoadError          files were found but could not be read or are inconsistent
    │   └── ModelKindError          an embedding model where a cross-encoder is expected, or the reverse
    ├── InputError                  the texts (or a file of texts) the caller gave are unusable
    │   ├── EmptyInputError         an empty list, or an empty / whitespace-only text
    │   ├── InputTypeError          an item that is not a string
    │   ├── InputTooLongError       a text over the token limit under the ``error`` policy
    │   │   └── PairTooLongError    a (query, document) pair over the limit with ``truncate=False``
    │   ├── DataFileError           an input file that cannot be read or lacks the text field
    │   ├── RequestTooLargeError    a request over a size limit (body bytes, texts per request)
    │   └── UnknownModelError       a request names a model the server does not serve
    ├── BackendError
    │   ├── BackendUnavailableError an optional runtime or device is missing (names the pip extra)
    │   ├── ExportError             exporting the model to ONNX failed
    │   └── InferenceError          the runtime failed during a forward pass
    ├── OutputError                 an output file cannot be written
    ├── AuthenticationError         a request without the right API key
    ├── ClusterError                a Ray cluster cannot be reached, or a distributed job failed there
    └── ServiceError                the serving engine cannot take or finish a request now
        ├── OverloadedError         admission refused: too many requests or a full queue (retry later)
        └── WorkerUnavailableError  the inference worker is starting, stuck or dead, or a request timed out
"""

from __future__ import annotations


class EmbedlabError(Exception):
    """Root of every error embedlab raises on purpose."""


class ConfigError(EmbedlabError):
    """A setting or option has an invalid value."""


class ModelError(EmbedlabError):
    """Something is wrong with the model the caller asked for."""


class ModelNotFoundError(ModelError):
    """The model name or path could not be resolved to local files."""


class ModelLoadError(ModelError):
    """Model files were found but could not be read or are inconsistent."""


class ModelKindError(ModelError):
    """The model is of the other kind: a cross-encoder where an embedding model is expected, or the reverse.

    Attributes:
        model: the model's name.
        kind: what it is (``embedding`` or ``cross-encoder``).
        evidence: the file and field that say so.
    """

    def __init__(self, model: str, kind: str, evidence: str) -> None:
        self.model = model
        self.kind = kind
        self.evidence = evidence
        if kind == "cross-encoder":
            what = "a cross-encoder (reranker), not an embedding model; load it with embedlab.load_reranker"
        else:
            what = "an embedding model, not a cross-encoder (reranker); load it with embedlab.load"
        super().__init__(f"model {model} is {what} ({evidence})")

    def __reduce__(self) -> tuple[type[ModelKindError], tuple[str, str, str]]:
        """Pickle with the constructor's arguments."""
        return (ModelKindError, (self.model, self.kind, self.evidence))


class InputError(EmbedlabError):
    """The caller's texts are unusable."""


class EmptyInputError(InputError):
    """An empty list of texts, or an empty / whitespace-only text."""


class InputTypeError(InputError):
    """An input item that is not a string."""


class InputTooLongError(InputError):
    """A text longer than the token limit under the ``error`` long-input policy.

    Attributes:
        index, n_tokens, limit: the text's position, its tokens and the limit.
        hint: what to do about it, in the caller's terms (the server names the request field the client used).
    """

    DEFAULT_HINT = "use long_input='truncate' or 'chunk', or shorten the text"

    def __init__(self, index: int, n_tokens: int, limit: int, hint: str | None = None) -> None:
        self.index = index
        self.n_tokens = n_tokens
        self.limit = limit
        self.hint = hint or self.DEFAULT_HINT
        super().__init__(f"input {index} has {n_tokens} tokens, over the limit of {limit} tokens ({self.hint})")

    def __reduce__(self) -> tuple[type[InputTooLongError], tuple[int, int, int, str]]:
        """Pickle with the constructor's arguments (worker processes send errors back to the driver)."""
        return (InputTooLongError, (self.index, self.n_tokens, self.limit, self.hint))


class PairTooLongError(InputTooLongError):
    """A (query, document) pair longer than the model's token limit while truncation is off."""

    DEFAULT_HINT = (
        "use truncate=True to cut the longer text first, as sentence-transformers' CrossEncoder does, "
        "or shorten the texts"
    )

    def __init__(self, index: int, n_tokens: int, limit: int, hint: str | None = None) -> None:
        super().__init__(index, n_tokens, limit, hint)
        self.args = (
            f"pair {index} (the query with document {index}) has {n_tokens} tokens, over the limit of {limit} "
            f"tokens ({self.hint})",
        )

    def __reduce__(self) -> tuple[type[InputTooLongError], tuple[int, int, int, str]]:
        """Pickle with the constructor's arguments."""
        return (PairTooLongError, (self.index, self.n_tokens, self.limit, self.hint))


class DataFileError(InputError):
    """An input data file cannot be read, is empty, or lacks the requested field."""


class BackendError(EmbedlabError):
    """A runtime backend failed."""


class BackendUnavailableError(BackendError):
    """An optional runtime, or the requested device, is not available."""


class ExportError(BackendError):
    """Exporting the model to ONNX failed."""


class InferenceError(BackendError):
    """The runtime failed during a forward pass."""


class OutputError(EmbedlabError):
    """An output file cannot be written."""


class RequestTooLargeError(InputError):
    """A request over a size limit: body bytes, texts per request."""


class UnknownModelError(InputError):
    """A request names a model the server does not serve."""


class AuthenticationError(EmbedlabError):
    """A request without the right API key."""


class ClusterError(EmbedlabError):
    """A Ray cluster cannot be reached (bad or unreachable address), or a distributed job failed on it."""


class ServiceError(EmbedlabError):
    """The serving engine cannot take or finish a request now.

    Attributes:
        retry_after: seconds after which a retry may succeed (for a ``Retry-After`` header).
    """

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OverloadedError(ServiceError):
    """Admission refused: too many concurrent requests, or the queue is full. Retry later."""


class WorkerUnavailableError(ServiceError):
    """The inference worker is starting, stuck or dead, or a request was not done within its timeout."""
