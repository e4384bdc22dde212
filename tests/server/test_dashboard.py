"""The dashboard page in a real headless browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from liveserver import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.is_file(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def test_dashboard_shows_the_model_live_metrics_and_a_similarity_matrix(
    default_server: LiveServer, default_model: Any
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from playwright.sync_api import sync_playwright

    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply today."]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(default_server.url + "/")
            page.wait_for_function("document.getElementById('model-name').textContent.includes('MiniLM')")
            assert page.locator("td[data-field='dimensions']").inner_text() == "384"
            assert page.locator("td[data-field='backend']").inner_text().startswith("onnx")
            page.wait_for_function("document.getElementById('health').textContent === 'healthy'")
            page.wait_for_function("document.getElementById('m-requests').textContent !== '–'")

            page.fill("#try-texts", "\n".join(texts))
            page.click("#try-run")
            page.wait_for_selector("#sim-matrix td[data-i='2'][data-j='2']")
            shown = np.array(
                [
                    [float(page.locator(f"#sim-matrix td[data-i='{i}'][data-j='{j}']").inner_text()) for j in range(3)]
                    for i in range(3)
                ]
            )
            vectors = default_model.embed(texts)
            np.testing.assert_allclose(shown, vectors @ vectors.T, atol=2e-3)
            assert shown[0, 1] > shown[0, 2]  # the two music sentences are the closest pair
            assert "3 vectors of 384 dimensions" in page.locator("#try-status").inner_text()

            # the metrics tiles move with traffic
            page.wait_for_function("Number(document.getElementById('m-texts').textContent.replace(/,/g, '')) >= 3")
        finally:
            browser.close()
    assert not errors, errors


def test_with_several_models_the_try_it_box_picks_the_model(tiny_embedder: Any, make_tiny_bert: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from playwright.sync_api import sync_playwright

    import embedlab
    from embedlab.server import ServerSettings, create_app

    other_dir = make_tiny_bert(seed=1, hidden=48)
    other = embedlab.load(str(other_dir), backend="torch", threads=1)
    models = [{"model": name, "served_model_name": name} for name in ("first", "second")]  # the loaded ones
    settings = ServerSettings(models=models)
    texts = ["the cat sat", "a dog", "the mat"]
    errors: list[str] = []
    with live_server(create_app(settings, embedders=[tiny_embedder, other])) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/")
            page.wait_for_function("document.getElementById('model-name').textContent === 'first, second'")
            assert page.locator("#try-model-row").is_visible()
            assert page.locator("td[data-field='dimensions']").inner_text() == str(tiny_embedder.dim)
            page.select_option("#try-model", "second")
            assert page.locator("td[data-field='dimensions']").inner_text() == "48"  # the card follows the choice
            page.fill("#try-texts", "\n".join(texts))
            page.click("#try-run")
            page.wait_for_selector("#sim-matrix td[data-i='2'][data-j='2']")
            shown = np.array(
                [
                    [float(page.locator(f"#sim-matrix td[data-i='{i}'][data-j='{j}']").inner_text()) for j in range(3)]
                    for i in range(3)
                ]
            )
            vectors = other.embed(texts)
            np.testing.assert_allclose(shown, vectors @ vectors.T, atol=2e-3)
            assert "3 vectors of 48 dimensions from second" in page.locator("#try-status").inner_text()
        finally:
            browser.close()
    assert not errors, errors
