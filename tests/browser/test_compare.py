"""A real browser compares two trained models: one line per model in every chart."""

from __future__ import annotations

import pytest

from apps.mlmodels.models import TrainedModel
from tests.browser.helpers import log_in, record_console_error, run_with_browser
from tests.mlmodels.test_compare import trained
from tests.mlmodels.test_errors import ready_dataset

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHARTS = """() => Object.fromEntries([...document.querySelectorAll("canvas[data-curve]")].map(
    c => [c.dataset.curve, Chart.getChart(c).data.datasets.map(d => [d.label, d.data.length])]))"""


def compare_in_browser(browser, base_url: str, username: str, password: str) -> dict:

    seen: dict = {"console_errors": []}
    page = browser.new_context().new_page()
    page.on("console", lambda m: record_console_error(seen, m))
    log_in(page, base_url, username, password)
    page.goto(base_url + "/models/?sort=val_accuracy")
    for checkbox in page.locator("#model-table input[name=id]").all():
        checkbox.check()
    with page.expect_navigation():
        page.click("#compare-form button[type=submit]")
    page.locator("#compare-charts[data-ready=true]").wait_for()
    seen["url"] = page.url
    seen["best"] = page.locator("#compare-table tr.table-success a").first.text_content()
    seen["charts"] = page.evaluate(CHARTS)
    return seen


def test_two_models_compared_in_a_real_browser(
    transactional_db, django_user_model, live_server_url
):
    user = django_user_model.objects.create_user("cora", password="browser-pw-4")
    dataset = ready_dataset(user, "digits")
    trained(user, dataset, "slow", [(2.0, 0.3, 2.1, 0.30), (1.5, 0.5, 1.6, 0.52)], best=2)
    trained(user, dataset, "fast", [(1.0, 0.6, 1.1, 0.61), (0.4, 0.9, 0.5, 0.88)], best=2)
    assert TrainedModel.objects.count() == 2

    seen = run_with_browser(
        lambda browser: compare_in_browser(browser, live_server_url, "cora", "browser-pw-4")
    )

    assert "/models/compare/?id=" in seen["url"]
    assert seen["best"] == "fast"
    assert seen["charts"] == {
        key: [["fast", 2], ["slow", 2]] for key in ("val_accuracy", "val_loss", "loss", "accuracy")
    }
    assert seen["console_errors"] == []


SWEEP = """() => {
    const svg = document.getElementById("parallel-coordinates");
    const lines = [...svg.querySelectorAll("polyline")].map((l) => ({
        model: l.dataset.model, stroke: l.getAttribute("stroke"),
        points: l.getAttribute("points").split(" ").map((p) => p.split(",").map(Number)),
        title: l.querySelector("title").textContent,
    }));
    const axes = [...svg.querySelectorAll("[data-axis]")].map((g) => [g.dataset.axis,
        g.querySelector("text").textContent]);
    const colours = Object.fromEntries(Chart.getChart(document.querySelector("canvas[data-curve]"))
        .data.datasets.map((d) => [d.label, d.borderColor]));
    return {lines, axes, colours,
            expected: lines.map((l) => DigitsCharts.colourOf("model:" + l.model))};
}"""


def test_a_sweep_set_against_its_result(transactional_db, django_user_model, live_server_url):
    """Parallel coordinates: an axis per differing option, the chosen metric last; each
    model's line in the model's own colour (the same in the curves)."""
    user = django_user_model.objects.create_user("swee", password="browser-pw-7")
    dataset = ready_dataset(user, "digits")
    models = [
        trained(user, dataset, f"lr {lr}", [(1.0, 0.5, 1.1, acc)], best=1, base_lr=lr,
                optimizer=opt)
        for lr, opt, acc in ((0.001, "sgd", 0.4), (0.01, "adam", 0.9), (0.1, "sgd", 0.6))
    ]  # fmt: skip
    ids = "&".join(f"id={m.pk}" for m in models)

    def watch(browser):

        page = browser.new_page(viewport={"width": 1300, "height": 900})
        log_in(page, live_server_url, "swee", "browser-pw-7")
        page.goto(f"{live_server_url}/models/compare/?{ids}")
        page.locator("#parallel-coordinates[data-ready=true]").wait_for()
        first = page.evaluate(SWEEP)
        page.select_option("[data-role=sweep-metric]", "val_loss")
        return first, page.evaluate(SWEEP)

    seen, by_loss = run_with_browser(watch)
    assert [a[0] for a in seen["axes"]] == ["base_lr", "optimizer", "val_accuracy"]
    assert seen["axes"][0][1] == "base lr (log)"
    heights = {line["title"].split(":")[0]: line["points"][-1][1] for line in seen["lines"]}
    # SVG y grows downwards: the best accuracy is drawn highest.
    assert heights["lr 0.01"] < heights["lr 0.1"] < heights["lr 0.001"], heights
    lr_axis = {line["title"].split(":")[0]: line["points"][0][1] for line in seen["lines"]}
    assert lr_axis["lr 0.1"] < lr_axis["lr 0.01"] < lr_axis["lr 0.001"]
    assert [line["stroke"] for line in seen["lines"]] == seen["expected"]
    assert {line["title"].split(":")[0]: line["stroke"] for line in seen["lines"]} == seen[
        "colours"
    ]
    assert len(set(seen["expected"])) == 3
    assert by_loss["axes"][-1] == ["val_loss", "Val loss"]
