"""docs/plugins.md works: its example plugin, pip-installed, builds a dataset.

The plugin's files are the doc's code blocks marked ``<!-- file: path -->``, so
the walk-through and this test cannot drift apart. The package is installed
with pip into a folder of its own and put on ``PYTHONPATH`` of the processes
started afterwards: a real installation (wheel built by setuptools, entry point
metadata, package data) that the shared virtual environment and test runs
beside this one never see. Every process started after the installation — a
management command, a worker, a web server — discovers it through its entry
point, as a restarted platform would; this test process, whose settings loaded
before, does not, so it talks to the web server over HTTP.
"""

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, wait_until
from tests.plugins.processes import Browser, manage, plugin_rows, start_web

DOC = ROOT / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```[\w-]*\n(.*?)^```$", re.M | re.S)
VIEW_FILE_BLOCK = re.compile(r"<!-- view-file: (\S+) -->\n```[\w-]*\n(.*?)^```$", re.M | re.S)

TRAIN_CSV = """\
sepal_length,sepal_width,petal_length,label
5.1,3.5,1.4,0
4.9,3.0,1.4,0
7.0,3.2,4.7,1
6.4,3.2,4.5,1
6.3,3.3,6.0,2
5.8,2.7,5.1,2
5.0,3.6,1.4,0
6.9,3.1,4.9,1
6.5,n/a,5.2,2
"""
VAL_CSV = """\
sepal_length,sepal_width,petal_length,label
5.4,3.9,1.7,0
5.5,2.3,4.0,1

7.1,3.0,5.9,2
"""


def doc_files(block=FILE_BLOCK) -> dict[str, str]:
    """``{path: text}`` of the example plugin's files in docs/plugins.md."""
    return dict(block.findall(DOC.read_text()))


def test_the_doc_shows_a_complete_plugin():
    assert set(doc_files()) == {
        "pyproject.toml",
        "digits_csvtable/__init__.py",
        "digits_csvtable/hooks.py",
        "digits_csvtable/ingestion.py",
        "digits_csvtable/forms.py",
        "digits_csvtable/templates/digits_csvtable/dataset_form.html",
    }


def test_the_doc_shows_a_complete_view_plugin():
    assert set(doc_files(VIEW_FILE_BLOCK)) == {
        "pyproject.toml",
        "digits_topclasses/__init__.py",
        "digits_topclasses/view.py",
        "digits_topclasses/forms.py",
        "digits_topclasses/templates/digits_topclasses/view.html",
    }


def pip_install(files: dict[str, str], source, site) -> None:
    for path, text in files.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-index", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)],
        check=True, timeout=300,
    )  # fmt: skip


@pytest.fixture
def installed_plugin(tmp_path):
    """The doc's plugin, ``pip install``-ed; ``PYTHONPATH`` for processes that should see it."""
    site = tmp_path / "site-packages"
    pip_install(doc_files(), tmp_path / "digits-csvtable", site)
    # Installed, not merely copied: the template came along as package data.
    assert (site / "digits_csvtable/templates/digits_csvtable/dataset_form.html").is_file()
    return str(site)


#: Run in a new process (``manage.py shell``): the view as the Test page calls it.
RENDER_VIEW = """
import numpy as np
from django.template.loader import render_to_string
from apps.core.plugins import catalog
from apps.datasets.models import Dataset

view_class = catalog.visualizations_for("classification")["top-classes"]
form = view_class.get_config_form()({"count": "2"})
assert form.is_valid(), form.errors
view = view_class(dataset=Dataset(manifest={"label_names": ["setosa", "versicolor", "virginica"]}),
                  **form.cleaned_data)
data = view.process_data("row 3", np.zeros((1, 3, 1), np.float32),
                         {"output": np.array([0.1, 0.2, 0.7])}, ground_truth=2)
print(render_to_string(*view.get_view_template(data)))
print("FOR SEGMENTATION:", sorted(catalog.visualizations_for("segmentation")))
"""


def test_the_installed_example_view_plugin_renders(tmp_path, people, start_process):
    site = tmp_path / "site-packages"
    pip_install(doc_files(VIEW_FILE_BLOCK), tmp_path / "digits-topclasses", site)
    assert (site / "digits_topclasses/templates/digits_topclasses/view.html").is_file()
    env = {"PYTHONPATH": str(site)}

    listing = manage("plugins", **env)
    assert listing.returncode == 0, listing.stderr
    assert "topclasses 0.1.0 [loaded]  digits_topclasses.view:TopClasses" in listing.stdout
    assert "django app: digits_topclasses" in listing.stdout
    assert "views: top-classes (Top classes)" in listing.stdout
    rendered = manage("shell", "-c", RENDER_VIEW, **env)
    assert rendered.returncode == 0, rendered.stderr
    assert "row 3 (truth: virginica)" in rendered.stdout
    items = re.findall(r'<li class="list-group-item">(.*?)</li>', rendered.stdout)
    assert items == ["virginica: 70.0 %", "versicolor: 20.0 %"]
    assert "top-classes" not in rendered.stdout.split("FOR SEGMENTATION:")[1]

    browser = Browser(start_web(start_process, **env), people.owner)
    listed = plugin_rows(browser.get("/plugins/").text)["topclasses"]
    assert "loaded" in listed.lower() and "Top classes (view)" in listed


@pytest.fixture
def csv_folder(tmp_path):
    folder = tmp_path / "data" / "iris"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text(TRAIN_CSV)
    (folder / "val.csv").write_text(VAL_CSV)
    (folder / "labels.txt").write_text("setosa\nversicolor\nvirginica\n")
    return folder


def test_the_installed_example_plugin_builds_a_dataset(
    installed_plugin, csv_folder, people, start_worker, start_process
):
    env = {"PYTHONPATH": installed_plugin, "DIGITS_SERVER_DATA_ROOTS": str(csv_folder.parent)}

    listing = manage("plugins", **env)
    assert listing.returncode == 0, listing.stderr
    assert "csvtable 0.1.0 [loaded]  digits_csvtable.hooks" in listing.stdout
    assert "package: digits-csvtable" in listing.stdout
    assert "dataset types: csv-table (CSV table)" in listing.stdout
    check = manage("check", **env)
    assert check.returncode == 0 and "W001" not in check.stderr, check.stderr

    start_worker(**env)
    browser = Browser(start_web(start_process, **env), people.owner)
    form = browser.get("/datasets/new/csv-table/")
    assert form.status == 200
    assert "<code>train.csv</code>" in form.text  # the plugin's own template
    listed = plugin_rows(browser.get("/plugins/").text)["csvtable"]
    assert "loaded" in listed.lower() and "CSV table (Tables)" in listed

    outside = browser.post_json(
        "/api/v1/datasets/", {"type": "csv-table", "name": "etc", "options": {"folder": "/etc"}}
    )
    assert outside.status == 400 and "outside the folders this server may read" in outside.text
    created = browser.post_json(
        "/api/v1/datasets/",
        {"type": "csv-table", "name": "iris", "options": {"folder": str(csv_folder), "has_header": True}},
    )  # fmt: skip
    assert created.status == 201, created.text

    def finished():
        dataset = browser.get(f"/api/v1/datasets/{created.json()['id']}/").json()
        return dataset if dataset["status"] != "building" else None

    dataset = wait_until(finished, timeout=90, interval=0.5)
    assert dataset["status"] == "ready", browser.get(f"/api/v1/jobs/{dataset['job']}/").text
    # 9 train rows, one of them bad (skipped: 1 of 12 entries is within the 10 % allowed);
    # the blank val line is not an entry; no test.csv.
    assert dataset["counts"] == {"train": 8, "val": 3, "test": 0}
    manifest = dataset["manifest"]
    assert manifest["feature"] == {"shape": [1, 3, 1], "dtype": "float32", "layout": "HWC"}
    assert manifest["label"]["kind"] == "class"
    assert manifest["label_names"] == ["setosa", "versicolor", "virginica"]
    assert manifest["error_count"] == 1
    assert manifest["errors"][0]["error"].startswith("train.csv line 10: could not convert")
