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
