"""Server paths confined to DIGITS_SERVER_DATA_ROOTS: ``confine`` and ``open_confined``."""

import os

import pytest
from django.core.exceptions import ValidationError

from apps.core.plugins import confine, fields, open_confined


@pytest.fixture
def tree(tmp_path, settings):
    root = (tmp_path / "root").resolve()
    (root / "class").mkdir(parents=True)
    (root / "class" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret.png").write_bytes(b"outside")
    (root / "class" / "escape.png").symlink_to(tmp_path / "secret.png")
    (root / "class" / "alias.png").symlink_to(root / "class" / "a.png")
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    return root


@pytest.fixture(params=["kernel", "portable"])
def way(request, monkeypatch):
    """Both ways of opening: Linux's O_PATH descriptor, and confine() then open()."""
    if request.param == "kernel" and not fields._KERNEL_RESOLVES:
        pytest.skip("no O_PATH or /proc/self/fd here")
    monkeypatch.setattr(fields, "_KERNEL_RESOLVES", request.param == "kernel")
    return request.param


def test_confine_resolves_links_and_refuses_paths_outside_the_roots(tree):
    assert confine(tree / "class" / "alias.png") == tree / "class" / "a.png"
    assert confine(str(tree)) == tree
    with pytest.raises(ValidationError, match="is outside the folders"):
        confine(tree / "class" / "escape.png")
    with pytest.raises(ValidationError, match="is outside the folders"):
        confine(str(tree) + "-sibling/x.png")  # a name that merely starts like a root


def test_open_confined_reads_files_inside_the_roots(tree, way):
    for name in ("a.png", "alias.png"):
        with open_confined(tree / "class" / name) as fh:
            assert fh.read() == b"inside"


def test_open_confined_refuses_links_out_of_the_roots(tree, way):
    with pytest.raises(ValidationError, match="escape.png is outside the folders"):
        open_confined(tree / "class" / "escape.png")
    with pytest.raises(ValidationError, match="is outside the folders"):
        open_confined("/etc/passwd")


def test_open_confined_refuses_missing_files_and_folders(tree, way):
    with pytest.raises(FileNotFoundError):
        open_confined(tree / "class" / "gone.png")
    with pytest.raises(ValidationError, match="is not a regular file"):
        open_confined(tree / "class")


def test_open_confined_never_blocks_on_a_fifo(tree):
    if not fields._KERNEL_RESOLVES:
        pytest.skip("opening a FIFO by name blocks; only the O_PATH way avoids it")
    os.mkfifo(tree / "class" / "pipe.png")
    with pytest.raises(ValidationError, match="is not a regular file"):
        open_confined(tree / "class" / "pipe.png")
