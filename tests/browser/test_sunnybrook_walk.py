"""DIGITS' Sunnybrook tutorial in a real browser: dataset → a U-Net trains while its Dice
chart grows live → Test with an uploaded DICOM slice and its contour → the predicted mask
is drawn over the scan, with Dice.

Separate processes as in production: uvicorn (pages, websockets), a job worker (dataset
build and training), the inference server (``manage.py inference``, warm models). The
data is a synthetic Sunnybrook-layout tree (``make_ellipse_tree``: 12-bit DICOM slices, an
ellipse ventricle and its contour file). The dataset and the model are created through
the REST API; everything after is what the browser shows.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

from apps.datasets.models import Dataset
from tests.browser.helpers import log_in, run_with_browser
from tests.conftest import wait_until
from tests.mlmodels.helpers import create_model
from tests.plugins.processes import start_web

pytestmark = [pytest.mark.browser, pytest.mark.tensorflow, pytest.mark.timeout(900)]

PASSWORD = "browser-pw-lv"
#: 12 epochs of 4 steps of 32×32 slices: a Dice point per epoch, so the page sees the series
#: grow over several epochs while the job runs; the rest of the run is waited for.
OPTIONS = {"epochs": 12, "batch_size": 8, "base_lr": 0.003, "optimizer": "adam",
           "policy": "fixed", "seed": 1, "metrics_every": 1}  # fmt: skip

DICE_POINTS = """() => {
    const chart = Chart.getChart("loss-chart");
    const dice = chart.data.datasets.find(d => d.label === "val Dice");
    const job = document.getElementById("job");
    return {
        dice: dice ? dice.data.length : 0,
        status: job.querySelector("[data-role=status]").textContent.trim(),
        noReload: window.__noReload === true,
    };
}"""

OVERLAY = """() => {
    const layer = document.querySelector(".seg-view .seg-mask-layer");
    const image = document.querySelector(".seg-view .seg-image");
    const box = layer.getBoundingClientRect();
    return {
        layerLoaded: layer.complete && layer.naturalWidth > 0,
        imageLoaded: image.complete && image.naturalWidth > 0,
        width: box.width, height: box.height,
        opacity: getComputedStyle(layer).opacity,
        dice: document.querySelector(".seg-view [data-role=dice]").textContent.trim(),
    };
}"""


def status_text(page) -> str:
    try:
        return page.inner_text("#job [data-role=status]", timeout=2_000)
    except Exception:  # noqa: BLE001 - the page is reloading
        return ""


def walk(browser, base_url: str, dataset_id: int, model_id: int, dicom: str, contour: str) -> dict:

    seen: dict = {"console_errors": [], "samples": []}
    context = browser.new_context()
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and not (
        m.location.get("url") or "").endswith("/favicon.ico")
        and seen["console_errors"].append(m.text))  # fmt: skip
    page.on("pageerror", lambda e: seen["console_errors"].append(str(e)))
    log_in(page, base_url, "cardio", PASSWORD)

    page.goto(f"{base_url}/datasets/{dataset_id}/")
    seen["dataset_page"] = page.inner_text("main")

    page.goto(f"{base_url}/models/{model_id}/")
    page.wait_for_selector("#loss-chart")
    page.evaluate("window.__noReload = true")  # a reload would drop it

    def sample():
        seen["samples"].append(page.evaluate(DICE_POINTS))
        return seen["samples"][-1]

    seen["first"] = wait_until(lambda: sample()["dice"] > 0 and seen["samples"][-1],
                               timeout=300, interval=0.2,
                               message="no validation Dice point")  # fmt: skip
    seen["later"] = wait_until(
        lambda: sample()["dice"] > seen["first"]["dice"] and seen["samples"][-1],
        timeout=120, interval=0.2, message="the Dice series did not grow",
    )  # fmt: skip
    # The page reloads itself when the job ends.
    wait_until(lambda: "Done" in status_text(page), timeout=300, interval=1,
               message="training did not finish")  # fmt: skip

    # The finished job's page reloads itself: open it afresh (a goto racing that
    # reload is aborted by it; then the reload's own load is waited for), then
    # follow "Test".
    open_afresh(page, f"{base_url}/models/{model_id}/")
    with page.expect_navigation():
        page.click("[data-role=test]")
    page.set_input_files("#id_dicom_file", dicom)
    page.set_input_files("#id_contour_file", contour)
    seen["views"] = page.eval_on_selector_all(
        "[data-role=view-select] option", "os => os.map(o => [o.value, o.selected])"
    )
    with page.expect_navigation():
        page.click("#test-form button[type=submit]")
    page.wait_for_selector(".seg-view .seg-mask-layer", state="visible")
    page.wait_for_function("() => document.querySelector('.seg-view .seg-mask-layer').complete")
    seen["overlay"] = page.evaluate(OVERLAY)
    page.fill(".seg-view .seg-opacity", "100")
    page.dispatch_event(".seg-view .seg-opacity", "input")
    seen["opacity_after"] = page.evaluate(OVERLAY)["opacity"]
    return seen


def open_afresh(page, url: str, tries: int = 3) -> None:
    from playwright.sync_api import Error

    for attempt in range(tries):
        try:
            page.goto(url)
            return
        except Error as exc:
            if "ERR_ABORTED" not in str(exc) or attempt == tries - 1:
                raise
            page.wait_for_load_state("load")


def test_sunnybrook_from_dicom_to_overlay(
    django_user_model, api_client, start_worker, start_process, tmp_path, settings
):
    from digits_sunnybrook.testing import contour_path, image_path, make_ellipse_tree

    root = (tmp_path / "data").resolve()
    root.mkdir()
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    socket_dir = tempfile.mkdtemp(prefix="inf-", dir="/tmp")  # a Unix socket path is short
    env = {"DIGITS_SERVER_DATA_ROOTS": str(root),
           "DIGITS_INFERENCE_URL": f"unix://{socket_dir}/inference.sock"}  # fmt: skip
    start_worker(queues=("default", "gpu"), threads=2, **env)
    server = start_process("manage.py", "inference", env=env, name="inference")
    server.wait_for_log("Inference server listening")
    url = start_web(start_process, **env)
    user = django_user_model.objects.create_user("cardio", password=PASSWORD)
    api = api_client.as_user(user)

    tree = make_ellipse_tree(root / "lv", cases=5, slices=8, size=32)
    options = {"image_folder": str(tree.images), "contour_folder": str(tree.contours),
               "val_percent": 20, "seed": 1}  # fmt: skip
    reply = api.post(
        "/api/v1/datasets/",
        {"type": "image-sunnybrook", "name": "lv", "options": options},
        format="json",
    )
    assert reply.status_code == 201, reply.content
    dataset = wait_until(
        lambda: Dataset.objects.exclude(status="building").filter(pk=reply.json()["id"]).first(),
        timeout=180, interval=0.5,
    )  # fmt: skip
    assert dataset.status == "ready", dataset.job.error
    created = create_model(api, dataset, "unet", network={"source": "standard", "name": "unet"},
                           **OPTIONS)  # fmt: skip
    case, number = tree.slices[0]
    dicom = image_path(tree.images, case, 4, number)
    contour = contour_path(tree.contours, f"SC-HF-I-{int(case.rsplit('-', 1)[1]):02d}", number)
    assert dicom.is_file() and contour.is_file()

    try:
        seen = run_with_browser(
            lambda browser: walk(browser, url, dataset.pk, created["id"], str(dicom), str(contour)),
            timeout=840,
        )
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)

    assert "Split by case" in seen["dataset_page"]
    first, later = seen["first"], seen["later"]
    print("val Dice points:", first["dice"], "→", later["dice"])
    assert later["noReload"] and later["status"] == "Running", later  # grew over the websocket
    assert seen["views"][0] == ["image-segmentation", True]  # the default for segmentation
    overlay = seen["overlay"]
    assert overlay["layerLoaded"] and overlay["imageLoaded"], overlay
    assert overlay["width"] > 0 and overlay["height"] > 0
    assert overlay["opacity"] == "0.5"  # the view's default, applied by its script
    assert seen["opacity_after"] == "1"
    assert 0.0 <= float(overlay["dice"]) <= 1.0, overlay
    assert not seen["console_errors"], seen["console_errors"]
