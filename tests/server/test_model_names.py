"""The names each served model answers to: given names must be unique, shared implied names are dropped."""

from __future__ import annotations

import pytest

from embedlab.errors import ConfigError
from embedlab.server.model_names import accepted_names_of, resolve_names
from embedlab.server.settings import ServerSettings


def test_a_model_answers_to_its_served_name_aliases_own_name_and_short_name() -> None:
    names = accepted_names_of(ServerSettings(served_model_name="mini", model_aliases=["e3"]), "org/mini-lm")
    assert names.served == "mini" and names.given == ("mini", "e3")
    assert names.implied == {"org/mini-lm", "mini-lm"}
    assert resolve_names([names]) == [frozenset({"mini", "e3", "org/mini-lm", "mini-lm"})]
    local = accepted_names_of(ServerSettings(), "/models/bge")
    assert local.served == "/models/bge" and local.implied == {"bge"}


def test_an_implied_name_two_models_share_reaches_neither() -> None:
    first = accepted_names_of(ServerSettings(), "org-a/e5-small")
    second = accepted_names_of(ServerSettings(), "org-b/e5-small")
    assert resolve_names([first, second]) == [frozenset({"org-a/e5-small"}), frozenset({"org-b/e5-small"})]


def test_a_given_name_wins_over_another_model_s_implied_one() -> None:
    default = accepted_names_of(ServerSettings(), "sentence-transformers/all-MiniLM-L6-v2")
    other = accepted_names_of(ServerSettings(model_aliases=["all-MiniLM-L6-v2"]), "org/other")
    kept = resolve_names([default, other])
    assert kept[0] == {"sentence-transformers/all-MiniLM-L6-v2"}
    assert kept[1] == {"org/other", "other", "all-MiniLM-L6-v2"}


def test_a_given_name_two_models_share_is_refused() -> None:
    first = accepted_names_of(ServerSettings(served_model_name="m"), "org/a")
    second = accepted_names_of(ServerSettings(model_aliases=["m"]), "org/b")
    with pytest.raises(ConfigError, match="two models answer to the name 'm' \\('m' and 'org/b'\\)"):
        resolve_names([first, second])
    with pytest.raises(ConfigError, match="name 'org/a'"):
        resolve_names([accepted_names_of(ServerSettings(), "org/a")] * 2)
