"""A real browser classifies one image with visualizations, and a dataset entry.

The page is served by uvicorn in its own process and answered by a real inference server
(its model process sandboxed); the probabilities it shows are Keras' on the same model.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.helpers import log_in, record_console_error, run_with_browser
from tests.inference.helpers import make_model, png, val_entries

pytestmark = [pytest.mark.browser, pytest.mark.tensorflow, pytest.mark.timeout(300)]

SHOWN = """() => ({
  rows: [...document.querySelectorAll("#predictions tr")].map(tr => [
    tr.cells[0].textContent.trim(), tr.querySelector(".progress-bar").textContent.trim(),
    tr.querySelector(".progress-bar").style.width]),
  error: document.querySelector("#classify-error")?.textContent.trim() || null,
  input: document.querySelector("#input-image")?.naturalWidth || 0,
  trueLabel: document.querySelector("#true-label")?.textContent.trim() || null,
  layers: [...document.querySelectorAll("#layers tr.layer")].map(tr => ({
    weights: tr.querySelector("img.grid-weights")?.naturalWidth || 0,
    activations: tr.querySelector("img.grid-activations")?.naturalWidth || 0,
    bars: tr.querySelectorAll("svg.histogram rect").length,
    text: tr.textContent.replace(/\\s+/g, " ").trim()})),
})"""


def classify_in_browser(browser, base_url, model_id, image: bytes, username, password) -> dict:

    seen: dict = {"console_errors": []}
    context = browser.new_context()
    context.set_default_timeout(90_000)  # the first request starts the model process
    page = context.new_page()
    page.on("console", lambda m: record_console_error(seen, m))
    log_in(page, base_url, username, password)
    page.goto(f"{base_url}/models/{model_id}/classify/")
    page.set_input_files("#id_image", {"name": "digit.png", "mimeType": "image/png",
                                       "buffer": image})  # fmt: skip
    page.fill("#id_top_n", "10")
    page.check("#id_layers")
    with page.expect_navigation():
        page.click("#classify-form button[type=submit]")
    seen["upload"] = page.evaluate(SHOWN)
    assert seen["upload"]["error"] is None, seen["upload"]["error"]
    page.fill("input[name=index]", "2")
    page.uncheck("#id_layers")
    with page.expect_navigation():
        page.click("#classify-form button[type=submit]")
    page.locator("#predictions").wait_for()
    seen["entry"] = page.evaluate(SHOWN)
    return seen


@pytest.fixture
def inference_for_the_web(inference_server, settings, monkeypatch):
    """The web process (started after this) reaches the test's inference server."""
    monkeypatch.setenv("DIGITS_INFERENCE_URL", settings.DIGITS_INFERENCE_URL)
    return inference_server


def test_classify_one_with_visualizations_in_a_real_browser(
    django_user_model, inference_for_the_web, live_server_url
):
    user = django_user_model.objects.create_user("cleo", password="browser-pw-5")
    model, network = make_model(user)
    features, labels = val_entries()

    seen = run_with_browser(
        lambda browser: classify_in_browser(
            browser, live_server_url, model.pk, png(features[0]), "cleo", "browser-pw-5"
        )  # fmt: skip
    )

    expected = network.predict(features[:1].astype(np.float32), verbose=0)[0]
    order = np.argsort(-expected)
    upload = seen["upload"]
    assert [row[0] for row in upload["rows"]] == [str(i) for i in order]  # all ten, in order
    assert [float(row[1]) for row in upload["rows"]] == pytest.approx(
        [round(float(expected[i]), 4) for i in order], abs=1e-4
    )
    assert all(row[2].endswith("%") for row in upload["rows"])  # the bars were drawn
    assert upload["input"] > 0 and upload["trueLabel"] is None
    layers = upload["layers"]
    assert len(layers) == 7, layers  # LeNet: conv, pool, conv, pool, flatten, dense, dense
    assert all(layer["activations"] > 0 and layer["bars"] >= 20 for layer in layers)
    with_weights = [layer for layer in layers if layer["weights"] > 0]
    assert len(with_weights) == 4 and all(layer["bars"] == 40 for layer in with_weights)
    assert "Conv2D" in layers[0]["text"] and "mean" in layers[0]["text"]

    entry = seen["entry"]
    assert entry["trueLabel"].startswith(f"True label: {labels[2]}")
    assert len(entry["rows"]) == 10 and entry["layers"] == []
    assert seen["console_errors"] == []
