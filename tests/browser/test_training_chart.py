"""A real browser watches a model train: the loss chart gains points without a reload.

The platform runs as separate processes (uvicorn for pages and websockets, a job
worker on the default and gpu queues); the dataset is scikit-learn's digits built by
the image classification plugin, and LeNet trains on the CPU with metrics every 2
steps. The model page's charts (``static/digits/models.js``) follow the job's event
stream; ``#job[data-chart-points]`` counts the points they drew.
"""

from __future__ import annotations

import pytest

from apps.jobs import services as jobs
from apps.jobs import sysmetrics
from apps.jobs.models import Job
from tests.browser.helpers import log_in, run_with_browser
from tests.builds import shared_dataset
from tests.conftest import wait_until
from tests.mlmodels.helpers import build_dataset, create_model

pytestmark = [pytest.mark.browser, pytest.mark.tensorflow, pytest.mark.timeout(600)]

CHART_STATE = """() => {
    const series = {};
    for (const id of ["loss-chart", "lr-chart", "system-chart"]) {
        for (const d of Chart.getChart(id).data.datasets) series[d.label] = d.data.length;
    }
    const job = document.getElementById("job");
    return {
        points: Number(job.dataset.chartPoints || 0),
        series: series,
        status: job.querySelector("[data-role=status]").textContent.trim(),
        noReload: window.__noReload === true,
    };
}"""


def open_model_page(browser, base_url, model_id, username, password, seen, console=False):
    """A new context logged in as ``username`` on the model's page, its charts shown; page
    errors (and, with ``console``, console errors) go to ``seen["console_errors"]``."""
    context = browser.new_context()
    context.set_default_timeout(60_000)
    page = context.new_page()
    if console:
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                # Chromium's automatic /favicon.ico request is not a page error.
                and not (m.location.get("url") or "").endswith("/favicon.ico")
                and seen["console_errors"].append(m.text)
            ),
        )
    page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
    log_in(page, base_url, username, password)
    page.goto(f"{base_url}/models/{model_id}/")
    page.wait_for_selector("#loss-chart")
    # A full load of the document would drop this marker: it proves no reload.
    page.evaluate("window.__noReload = true")
    return page


def watch_chart(browser, base_url: str, model_id: int, username: str, password: str) -> dict:

    seen: dict = {"samples": [], "console_errors": []}
    page = open_model_page(browser, base_url, model_id, username, password, seen, console=True)

    def sample():
        state = page.evaluate(CHART_STATE)
        seen["samples"].append(state)
        return state

    # Wait for the first points (the job process imports TensorFlow first) ...
    first = wait_until(lambda: sample()["points"] > 0 and seen["samples"][-1], timeout=240,
                 interval=0.5, message="the chart never got a point")  # fmt: skip
    # ... then for more to arrive over the websocket, with the job still training.
    later = wait_until(
        lambda: sample()["points"] >= first["points"] + 12 and seen["samples"][-1],
        timeout=120, interval=0.5,
        message=f"the chart stopped growing: {seen['samples'][-3:]}",
    )  # fmt: skip
    seen["first"], seen["later"] = first, later
    seen["final"] = sample()
    return seen


def test_the_loss_chart_grows_while_the_model_trains(
    django_user_model, api_client, start_worker, live_server_url, tmp_path, settings,
    built_datasets,
):  # fmt: skip
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    user = django_user_model.objects.create_user("chartie", password="browser-pw-3")
    start_worker(queues=("default", "gpu"), threads=2, DIGITS_SERVER_DATA_ROOTS=str(root),
                 DIGITS_DATA_DIR=str(tmp_path / "worker-var"))  # fmt: skip
    api = api_client.as_user(user)
    dataset = shared_dataset(  # the tests' digits, built once per test process
        built_datasets, ("digits", 16, 40), user,
        lambda: build_dataset(api, root, size=16, per_class=40, name="chart digits"),
        name="chart digits",
    )  # fmt: skip
    # 300 training images in batches of 8, 20 epochs, a chart point every 2 steps: the
    # run lasts far longer than the page is watched.
    created = create_model(api, dataset, "charted", epochs=20, batch_size=8, base_lr=0.01,
                           optimizer="momentum", metrics_every=2)  # fmt: skip

    seen = run_with_browser(
        lambda browser: watch_chart(
            browser, live_server_url, created["id"], "chartie", "browser-pw-3"
        ),
        timeout=520,
    )
    jobs.request_abort(Job.objects.get(pk=created["job"]))

    first, later, final = seen["first"], seen["later"], seen["final"]
    print("chart points:", first["points"], "→", later["points"], "→", final["points"])
    assert final["status"] == "Running", "the job was no longer training while the chart grew"
    assert final["noReload"], "the page reloaded: the points must come over the websocket"
    assert later["points"] > first["points"]
    points = [s["points"] for s in seen["samples"]]
    assert points == sorted(points), points
    # The streamed series are drawn, and grow: training loss, accuracy (and validation ones).
    assert later["series"]["train loss"] > first["series"].get("train loss", 0)
    assert later["series"]["train accuracy"] >= 1
    assert later["series"]["learning rate"] >= 1
    assert sum(final["series"].values()) == final["points"]
    assert not seen["console_errors"], seen["console_errors"]
    wait_until(lambda: Job.objects.filter(pk=created["job"], status="aborted").exists(), timeout=60)


# Each series as the chart draws it: the colour Chart.js resolved for its line and its
# legend box, and how many points it has.
DRAWN_SERIES = """() => {
    const chart = Chart.getChart("loss-chart");
    const grey = String(Chart.defaults.borderColor);
    const legend = chart.legend.legendItems || [];
    return chart.data.datasets.map((d, i) => {
        const item = legend.find((l) => l.datasetIndex === i) || {};
        // A dataset added since the chart's last update has no line yet (the page updates
        // once per animation frame): null until it is drawn.
        const line = chart.getDatasetMeta(i).dataset;
        return {
            label: d.label, points: d.data.length,
            line: line ? String(line.options.borderColor) : null,
            box: String(item.fillStyle), grey: grey,
        };
    });
}"""

EPOCH_ROWS = """() => Array.from(document.querySelectorAll("#epoch-table tbody tr[data-epoch]"))
    .map((tr) => tr.dataset.epoch)"""


SYSTEM_SERIES = """() => Object.fromEntries(Chart.getChart("system-chart").data.datasets
    .map((d) => [d.label, d.data.length]))"""


def watch_first_epoch(browser, base_url: str, model_id: int, username: str, password: str) -> dict:

    seen: dict = {"console_errors": []}
    # Opened before training starts: every series arrives over the event stream.
    page = open_model_page(browser, base_url, model_id, username, password, seen)

    def drawn_series():
        # Every series with points drawn, or None to read again after the next update.
        drawn = page.evaluate(DRAWN_SERIES)
        seen["drawn"] = drawn
        return drawn if all(s["line"] is not None for s in drawn if s["points"]) else None

    def validated():
        drawn = drawn_series()
        return drawn and any(s["label"] == "val loss" and s["points"] for s in drawn)

    wait_until(validated, timeout=300, interval=0.5,
               message="no validation point was drawn")  # fmt: skip
    wait_until(lambda: page.evaluate(EPOCH_ROWS), timeout=60, interval=0.5,
               message="the epochs table never got the finished epoch")  # fmt: skip
    # System metrics, sampled every second, charted beside the loss.
    wait_until(lambda: page.evaluate(SYSTEM_SERIES).get("memory (MB)", 0) >= 3,
               timeout=60, interval=0.5, message="no system metrics were charted")  # fmt: skip
    seen["system"] = page.evaluate(SYSTEM_SERIES)
    seen["rows"] = page.evaluate(EPOCH_ROWS)
    seen["drawn"] = wait_until(drawn_series, timeout=30, interval=0.2,
                               message="a series with points was never drawn")  # fmt: skip
    seen["status"] = page.locator("#job [data-role=status]").first.text_content().strip()
    seen["noReload"] = page.evaluate("window.__noReload === true")
    return seen


def test_validation_series_and_epoch_rows_appear_while_training(
    django_user_model, api_client, start_worker, live_server_url, tmp_path, settings,
    built_datasets,
):  # fmt: skip
    """Validation lines are coloured from their first point (not grey with an empty legend
    box until a reload) and each finished epoch gets its row while the model trains."""
    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    user = django_user_model.objects.create_user("epochy", password="browser-pw-4")
    start_worker(queues=("default", "gpu"), threads=2, DIGITS_SERVER_DATA_ROOTS=str(root),
                 DIGITS_DATA_DIR=str(tmp_path / "worker-var"))  # fmt: skip
    api = api_client.as_user(user)
    dataset = shared_dataset(
        built_datasets, ("digits", 16, 40), user,
        lambda: build_dataset(api, root, size=16, per_class=40, name="chart digits"),
        name="chart digits",
    )  # fmt: skip
    created = create_model(api, dataset, "epoched", epochs=20, batch_size=8, base_lr=0.01,
                           optimizer="momentum", metrics_every=2)  # fmt: skip
    # The page opens while the job process still imports TensorFlow: the validation
    # series start after the loss line is drawn.

    seen = run_with_browser(
        lambda browser: watch_first_epoch(
            browser, live_server_url, created["id"], "epochy", "browser-pw-4"
        ),
        timeout=520,
    )
    jobs.request_abort(Job.objects.get(pk=created["job"]))

    print("drawn:", seen["drawn"], "rows:", seen["rows"])
    assert seen["noReload"] and seen["status"] == "Running", seen
    lines = {s["label"]: s for s in seen["drawn"] if s["points"]}
    for label in ("train loss", "val loss", "val accuracy"):
        series = lines[label]
        assert series["line"] != series["grey"] and series["box"] != series["grey"], series
        assert series["box"] not in ("undefined", ""), series
    colours = [s["line"] for s in lines.values()]
    assert len(set(colours)) == len(colours), f"two series share a colour: {lines}"
    assert seen["rows"][0] == "1", seen["rows"]
    assert seen["system"]["CPU (%)"] >= 3, seen["system"]
    # GPU series where NVML answers (on a machine with an NVIDIA driver), none elsewhere.
    gpus = any(label.startswith("GPU") for label in seen["system"])
    assert gpus == bool(sysmetrics._gpu_handles()), seen["system"]
    assert not seen["console_errors"], seen["console_errors"]
    wait_until(lambda: Job.objects.filter(pk=created["job"], status="aborted").exists(), timeout=60)
