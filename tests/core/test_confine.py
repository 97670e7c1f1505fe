"""Server paths confined to DIGITS_SERVER_DATA_ROOTS: ``confine`` and ``open_confined``."""

import os

import pytest
from django.core.exceptions import ValidationError

from apps.core.plugins import ConfinedReader, confine, fields, open_confined


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


# --- ConfinedReader: many files of a few folders, each folder checked once ------------------
@pytest.fixture
def reader(tree):
    reader = ConfinedReader(max_bytes=1000, max_folders=2)
    yield reader
    reader.close()


def test_confined_reader_reads_files_and_links_inside_the_roots(tree, reader, way):
    assert reader.read(tree / "class" / "a.png") == b"inside"
    assert reader.read(str(tree / "class" / "alias.png")) == b"inside"  # a link, followed


def test_confined_reader_refuses_what_open_confined_refuses(tree, reader, way):
    with pytest.raises(ValidationError, match="escape.png is outside the folders"):
        reader.read(tree / "class" / "escape.png")
    with pytest.raises(ValidationError, match="is outside the folders"):
        reader.read("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        reader.read(tree / "class" / "gone.png")
    with pytest.raises(FileNotFoundError):
        reader.read(tree / "nowhere" / "a.png")
    with pytest.raises(ValidationError, match="is not a regular file"):
        reader.read(tree / "class")


def test_confined_reader_refuses_a_folder_linked_out_of_the_roots(tree, reader, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.png").write_bytes(b"outside")
    (tree / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValidationError, match="b.png is outside the folders"):
        reader.read(tree / "linked" / "b.png")


def test_confined_reader_checks_a_file_swapped_for_a_link_after_its_folder(tree, reader):
    assert reader.read(tree / "class" / "a.png") == b"inside"  # the folder is now kept open
    (tree / "class" / "a.png").unlink()
    (tree / "class" / "a.png").symlink_to(tree.parent / "secret.png")
    with pytest.raises(ValidationError, match="a.png is outside the folders"):
        reader.read(tree / "class" / "a.png")


def test_confined_reader_refuses_files_above_its_limit(tree, reader, way):
    (tree / "class" / "big.png").write_bytes(b"x" * 1001)
    with pytest.raises(ValidationError, match="1001 bytes, more than the 1000 allowed"):
        reader.read(tree / "class" / "big.png")
    (tree / "class" / "max.png").write_bytes(b"x" * 1000)
    assert len(reader.read(tree / "class" / "max.png")) == 1000


def test_confined_reader_never_blocks_on_a_fifo(tree, reader):
    if not fields._KERNEL_RESOLVES:
        pytest.skip("opening a FIFO by name blocks; only the O_PATH way avoids it")
    os.mkfifo(tree / "class" / "pipe.png")
    with pytest.raises(ValidationError, match="is not a regular file"):
        reader.read(tree / "class" / "pipe.png")


def test_confined_reader_keeps_at_most_max_folders_open(tree, reader):
    if not fields._KERNEL_RESOLVES:
        pytest.skip("the portable way keeps no folder open")
    folders = [tree / f"f{n}" for n in range(5)]
    for n, folder in enumerate(folders):
        folder.mkdir()
        (folder / "x.png").write_bytes(b"%d" % n)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        assert [reader.read(f / "x.png") for f in folders] == [b"0", b"1", b"2", b"3", b"4"]
    assert len(os.listdir("/proc/self/fd")) <= before + 2
    reader.close()
    assert len(os.listdir("/proc/self/fd")) <= before


def test_paths_outside_the_roots_are_refused_before_any_system_call(tree, way, monkeypatch):
    """Whether a path outside the roots exists must not change the answer (no oracle): it
    is refused as written, before anything stats, resolves or opens it. A text list's
    lines are read through ``ConfinedReader``."""
    touched = []

    def spy(name):
        real = getattr(os, name)

        def call(path, *args, **kwargs):
            touched.append((name, os.fspath(path)))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, call)

    for name in ("open", "stat", "lstat", "readlink"):
        spy(name)
    outside = tree.parent / "secret.png"  # exists
    for path in (outside, tree.parent / "absent" / "x.png", f"{tree}/../secret.png"):
        messages = set()
        for read in (confine, open_confined, ConfinedReader(2**20).read):
            with pytest.raises(ValidationError) as refused:
                read(path)
            messages.add(refused.value.messages[0])
        assert messages == {f"{path} is outside the folders this server may read from "
                            f"({tree}; see DIGITS_SERVER_DATA_ROOTS)."}  # fmt: skip
    assert touched == []
