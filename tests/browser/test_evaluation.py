"""A real browser follows the confusion matrix of an evaluation to its entries: every
cell's link names its own true and predicted class, and the page a cell opens shows
exactly the entries of that cell, each linking to the dataset entry's image."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.helpers import log_in, record_console_error, run_with_browser
from tests.evaluations.helpers import (
    digits_dataset,
    finished_evaluation,
    model_row,
    noisy_probs,
    stored_table,
    val_labels,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

CELLS = """() => [...document.querySelectorAll("#confusion-matrix td a")].map(a => {
    const q = new URL(a.href).searchParams, td = a.closest("td");
    return {true: td.dataset.true, predicted: td.dataset.predicted, count: a.textContent,
            href_true: q.get("true"), href_predicted: q.get("predicted")};
})"""
SHOWN = """() => [...document.querySelectorAll("#gallery figure")].map(f => ({
    index: +f.dataset.index, label: +f.dataset.label, predicted: +f.dataset.predicted,
    link: f.querySelector("a[data-role=entry-link]").getAttribute("href")}))"""


def follow_matrix(browser, base_url: str, evaluation_id: int, cell: tuple[int, int]) -> dict:

    seen: dict = {"console_errors": []}
    page = browser.new_context().new_page()
    page.on("console", lambda m: record_console_error(seen, m))
    log_in(page, base_url, "eve", "browser-pw-5")
    page.goto(f"{base_url}/evaluations/{evaluation_id}/")
    seen["cells"] = page.evaluate(CELLS)
    selector = f'#confusion-matrix td[data-true="{cell[0]}"][data-predicted="{cell[1]}"] a'
    with page.expect_navigation():
        page.click(selector)
    seen["count_text"] = page.locator("#entry-count").text_content()
    seen["shown"] = page.evaluate(SHOWN)
    # Chromium's own image viewer (next) styles inline, which the CSP refuses.
    seen["page_errors"] = list(seen["console_errors"])
    with page.expect_navigation():
        page.click("#gallery figure a[data-role=entry-link] >> nth=0")
    seen["entry_url"] = page.url
    return seen


def test_confusion_matrix_links_to_the_entries_in_a_real_browser(
    transactional_db, django_user_model, live_server_url, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    user = django_user_model.objects.create_user("eve", password="browser-pw-5")
    dataset = digits_dataset(user)
    labels = val_labels()
    evaluation = finished_evaluation(
        user, model_row(user, dataset), labels, noisy_probs(labels, right=0.6), dataset=dataset
    )
    table = stored_table(evaluation)
    guess = table["probs"].argmax(axis=1)
    matrix = np.zeros((10, 10), int)
    np.add.at(matrix, (labels, guess), 1)
    cell = max(
        ((t, p) for t in range(10) for p in range(10) if t != p),
        key=lambda c: (matrix[c], -c[0], -c[1]),
    )
    assert matrix[cell] >= 1

    seen = run_with_browser(
        lambda browser: follow_matrix(browser, live_server_url, evaluation.pk, cell)
    )

    assert len(seen["cells"]) == int((matrix > 0).sum())
    for c in seen["cells"]:
        assert (c["href_true"], c["href_predicted"]) == (c["true"], c["predicted"])
        assert int(c["count"]) == matrix[int(c["true"]), int(c["predicted"])]
    expected = np.flatnonzero((labels == cell[0]) & (guess == cell[1])).tolist()
    assert [s["index"] for s in seen["shown"]] == expected
    assert {(s["label"], s["predicted"]) for s in seen["shown"]} == {cell}
    assert seen["count_text"].strip().startswith(f"{len(expected)} entr")
    assert seen["shown"][0]["link"] == f"/datasets/{dataset.pk}/entries/val/{expected[0]}.png"
    assert seen["entry_url"].endswith(seen["shown"][0]["link"])
    assert seen["page_errors"] == []
