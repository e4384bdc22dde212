"""The names a request's ``model`` may use for each served model, and the check that no two models share one.

A model answers to names of two sorts:

- **given** names: its served name (``served_model_name``, else the model's own name, which responses
  report) and its ``model_aliases``. No two models may share one: the server refuses to start
  (:class:`~embedlab.errors.ConfigError`, naming the name and both models).
- **implied** names: the model's own name when it is served under another, and the last part of a hub
  name or path (``all-MiniLM-L6-v2`` for ``sentence-transformers/all-MiniLM-L6-v2``). An implied name
  that another model also answers to (``org-a/e5-small`` and ``org-b/e5-small``) is dropped from the
  model that implies it, with a warning, so a request can never reach a model it did not mean.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from embedlab.errors import ConfigError
from embedlab.server.settings import ServerSettings, check_unique_names

log = logging.getLogger("embedlab.server")


@dataclass(frozen=True)
class ModelNames:
    """The names one model answers to.

    Attributes:
        served: the name reported in responses.
        given: the served name and the aliases, in that order.
        implied: the model's own name and the last part of its hub name or path, less the given ones.
    """

    served: str
    given: tuple[str, ...]
    implied: frozenset[str]

    @property
    def all_names(self) -> frozenset[str]:
        """Given and implied names together."""
        return frozenset(self.given) | self.implied


def accepted_names_of(settings: ServerSettings, spec_name: str) -> ModelNames:
    """The names of a model of ``spec_name`` served with ``settings`` (its own, for a server of several)."""
    served = settings.served_model_name or spec_name
    given = tuple(n for n in dict.fromkeys([served, *settings.model_aliases]) if n)
    implied = {spec_name}
    if "/" in spec_name or PurePath(spec_name).is_absolute():
        implied.add(PurePath(spec_name).name)
    return ModelNames(served, given, frozenset(n for n in implied if n) - set(given))


def resolve_names(models: Sequence[ModelNames]) -> list[frozenset[str]]:
    """Per model, the names a request may use for it.

    Raises:
        ConfigError: two models share a given name (served name or alias).
    """
    try:
        check_unique_names([(names.served, names.given[1:]) for names in models])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = []
    for index, names in enumerate(models):
        others = [other for i, other in enumerate(models) if i != index]
        taken = {name for other in others for name in other.all_names}
        shared = sorted(names.implied & taken)
        if shared:
            log.warning("model %s does not answer to %s: another served model does too", names.served, shared)
        out.append(frozenset(names.given) | (names.implied - taken))
    return out
