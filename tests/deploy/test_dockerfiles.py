"""The Dockerfiles keep the runtime contract the Helm chart relies on.

No Docker engine is needed: the Dockerfiles are parsed as text.
"""

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

DOCKER = Path(__file__).resolve().parents[2] / "docker"
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(
            line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")
        ),
    )
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), " ".join(args.split())
        if keyword == "FROM":
            words = args.split()
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), words[0]
            )
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif stages:
            stages[-1].instructions.append((keyword, args))
        elif keyword == "ARG":
            arg_name, _, default = args.partition("=")
            global_args[arg_name] = default
    return global_args, stages


@pytest.fixture(params=DOCKERFILES)
def dockerfile(request) -> tuple[str, dict[str, str], list[Stage]]:
    return (request.param, *parse(DOCKER / request.param))


def test_final_stage_runs_as_uid_10001(dockerfile) -> None:
    _, _, stages = dockerfile
    final = stages[-1]
    user = final.last("USER")
    assert user is not None
    uid = user.split(":")[0]
    assert uid == "10001", "the chart's podSecurityContext expects uid 10001"
    assert any("--uid 10001" in run for run in final.all("RUN"))


def test_final_stage_matches_runtime_contract(dockerfile) -> None:
    _, _, stages = dockerfile
    final = stages[-1]
    assert final.base == "python:3.11-slim"
    assert final.last("WORKDIR") == "/app"
    env = " ".join(final.all("ENV"))
    assert "PATH=/opt/venv/bin:$PATH" in env
    assert "DIGITS_DATA_DIR=/var/lib/digits" in env
    # Nothing writes bytecode next to the code on a read-only root filesystem.
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    copies = final.all("COPY")
    assert "--from=builder /opt/venv /opt/venv" in copies
    assert "--from=builder /app /app" in copies
    # The chart sets args only, so the entrypoint (signal forwarding) stays.
    assert shlex.split(final.last("ENTRYPOINT").strip("[]").replace(",", " ")) == ["tini", "--"]


def test_builder_installs_digits_and_the_in_repo_plugins(dockerfile) -> None:
    name, _, stages = dockerfile
    builder = next(stage for stage in stages if stage.name == "builder")
    assert builder.base == "python:3.11-slim"
    assert any("python -m venv /opt/venv" in run for run in builder.all("RUN"))
    (install,) = [run for run in builder.all("RUN") if "pip install -e" in run]
    assert "find plugins -mindepth 2 -maxdepth 2 -name pyproject.toml" in install
    assert "$plugins" in install
    assert "$EXTRA_PIP_PACKAGES" in install
    assert any(arg.startswith("EXTRA_PIP_PACKAGES") for arg in builder.all("ARG"))
    target = '".[gpu]"' if name == "Dockerfile.gpu" else "-e . "
    assert target in install
    assert any("collectstatic --noinput" in run for run in builder.all("RUN"))


def test_gpu_image_replaces_the_cpu_tensorflow() -> None:
    _, stages = parse(DOCKER / "Dockerfile.gpu")
    builder = next(stage for stage in stages if stage.name == "builder")
    (install,) = [run for run in builder.all("RUN") if "pip install -e" in run]
    assert "pip uninstall -y tensorflow-cpu" in install
    assert "import tensorflow" in install
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in " ".join(stages[-1].all("ENV"))


@pytest.mark.parametrize("name", DOCKERFILES)
def test_build_context_leaves_out_local_state(name: str) -> None:
    ignored = (DOCKER / f"{name}.dockerignore").read_text().split()
    for entry in (".git", ".venv", "var", "staticfiles", "**/__pycache__"):
        assert entry in ignored
