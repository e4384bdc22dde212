from __future__ import annotations

import embedlab


def test_all_is_sorted_and_importable() -> None:
    assert embedlab.__all__ == sorted(embedlab.__all__)
    for name in embedlab.__all__:
        assert hasattr(embedlab, name), name


def test_every_error_derives_from_the_root() -> None:
    errors = [getattr(embedlab, n) for n in embedlab.__all__ if n.endswith("Error")]
    assert len(errors) >= 10
    assert all(issubclass(e, embedlab.EmbedlabError) for e in errors)


def test_errors_survive_pickling_across_processes() -> None:
    import pickle

    error = embedlab.InputTooLongError(3, 300, 256)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.index, copy.n_tokens, copy.limit, str(copy)) == (3, 300, 256, str(error))
    hinted = embedlab.InputTooLongError(1, 9, 8, hint="send truncate: true")
    assert (
        str(pickle.loads(pickle.dumps(hinted)))
        == str(hinted)
        == "input 1 has 9 tokens, over the limit of 8 tokens (send truncate: true)"
    )
    assert str(pickle.loads(pickle.dumps(embedlab.ConfigError("bad")))) == "bad"
