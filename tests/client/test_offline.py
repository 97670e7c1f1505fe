"""The SDK and CLI without a server: installable alone, errors named per field, the
command line parsed as documented, completion that completes."""

import json
import subprocess
import sys
import textwrap

import pytest

from digits.client import ValidationError, config
from digits.client.cli import build_parser, main, parse_pairs
from digits.client.completion import script
from digits.client.errors import error_for


def test_imports_without_django_or_tensorflow():
    """A notebook or CI job installs the client alone: nothing of the server is imported."""
    code = textwrap.dedent("""
        import sys
        for name in ("django", "rest_framework", "tensorflow", "keras", "numpy", "apps"):
            sys.modules[name] = None  # importing any of them now fails
        import digits.client, digits.client.cli, digits.client.watch, digits.client.upload
        digits.client.cli.build_parser().parse_args(["jobs", "watch", "1"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_field_errors_flatten_drf_and_django_form_shapes():
    error = error_for(400, {
        "name": ["This field is required."],
        "options": {"width": [{"message": "Enter a whole number.", "code": "invalid"}],
                    "__all__": [{"message": "Pick a folder or an archive.", "code": "x"}]},
        "network": {"upload_key": "Not one of your uploads."},
    })  # fmt: skip
    assert isinstance(error, ValidationError) and error.status == 400
    assert error.field_messages() == [
        ("name", "This field is required."),
        ("options.width", "Enter a whole number."),
        ("options", "Pick a folder or an archive."),
        ("network.upload_key", "Not one of your uploads."),
    ]


def test_global_options_work_before_and_after_the_command():
    parser = build_parser()
    before = parser.parse_args(["--json", "--url", "http://a:1", "jobs", "list"])
    after = parser.parse_args(["jobs", "list", "--json", "--url", "http://a:1"])
    neither = parser.parse_args(["jobs", "list"])
    assert (before.json, before.url) == (after.json, after.url) == (True, "http://a:1")
    assert (neither.json, neither.url) == (False, None)


def test_key_value_options_keep_types():
    assert parse_pairs(["width=28", "source=folder", "mean=true", "rate=0.5"]) == {
        "width": 28, "source": "folder", "mean": True, "rate": 0.5,
    }  # fmt: skip
    assert main(["datasets", "create", "--name", "x", "--option", "width"]) == 1


def test_settings_come_from_arguments_then_environment_then_file(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    monkeypatch.setenv("DIGITS_CONFIG", str(path))
    monkeypatch.delenv("DIGITS_URL", raising=False)
    monkeypatch.delenv("DIGITS_TOKEN", raising=False)
    config.write_file({"url": "http://file:1/", "token": "from-file"})
    assert config.resolve() == config.Settings("http://file:1", "from-file")
    monkeypatch.setenv("DIGITS_TOKEN", "from-env")
    assert config.resolve().token == "from-env"
    assert config.resolve(token="given").token == "given"
    assert json.loads(path.read_text())["token"] == "from-file"
    assert path.stat().st_mode & 0o077 == 0  # a token: the owner's eyes only


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("digits da", "datasets"),
        ("digits datasets cr", "create"),
        ("digits models train --ep", "--epochs"),
    ],
)
def test_bash_completion_completes_commands_and_options(words, expected, tmp_path):
    (tmp_path / "completion.bash").write_text(script(build_parser(), "bash"))
    parts = words.split(" ")
    probe = textwrap.dedent(f"""
        source {tmp_path / "completion.bash"}
        COMP_WORDS=({" ".join(parts)}); COMP_CWORD={len(parts) - 1}
        _digits_complete
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """)
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout.split(), done.stdout
