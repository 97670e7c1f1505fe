"""What a job worker imports to start: none of the modules only the web needs (issue #15).

Django REST framework's serializers bring ``rest_framework.compat`` with them, which imports
requests, PyYAML, Pygments and more: about a quarter of a second of CPU at every worker
start. Job kinds name their parameter serializers by path (``JobKind.params_serializer``).
"""

import subprocess
import sys

from tests.conftest import ROOT

WORKER_START = """
import sys

import django

django.setup()
from apps.jobs.management.commands import jobworker  # noqa: F401
from apps.jobs import launcher, liveness, sandbox, tasks  # noqa: F401  as handle() does
from apps.cluster import agent  # noqa: F401

print(sorted(m for m in ("rest_framework.serializers", "requests", "yaml") if m in sys.modules))
"""


def test_a_worker_starts_without_the_web_only_modules():
    out = subprocess.run(
        [sys.executable, "-c", WORKER_START],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr[-2000:]
