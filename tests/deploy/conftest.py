"""Deployment artefact tests (Helm chart, Dockerfiles): no Django, no database.

They only read files under helm/ and docker/, so they also run with
``-p no:django``. The ``deploy`` marker selects or skips them as a group.
"""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "deploy: Helm chart and Dockerfile checks (no DB, no cluster)"
    )
