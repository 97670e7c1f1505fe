"""Archives and text lists to classify: labels from class folders, DIGITS' list format with
optional labels, paths confined to the archive or to the server data roots."""

import io
import zipfile

import pytest
from django.core.exceptions import ValidationError

from apps.evaluations import sources


def test_archive_items_are_sorted_and_labelled_by_class_folder(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("cat/2.png", "dog/1.jpg", "cat/1.png", "misc/x.png", "top.png",
                     ".hidden/y.png", "cat/.z.png", "cat/notes.txt"):  # fmt: skip
            zf.writestr(name, b"bytes of " + name.encode())
    root = sources.extract(archive, "a.zip", tmp_path / "files")
    items = sources.archive_items(root, ["cat", "dog"])
    assert [(i.name, i.label) for i in items] == [
        ("cat/1.png", 0), ("cat/2.png", 0), ("dog/1.jpg", 1), ("misc/x.png", -1), ("top.png", -1),
    ]  # fmt: skip
    assert items[0].read() == b"bytes of cat/1.png"


def test_an_unsafe_archive_is_refused_naming_the_member(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escape.png", b"x")
    with pytest.raises(sources.SourceError, match="escape.png"):
        sources.extract(archive, "evil.zip", tmp_path / "files")
    assert not list((tmp_path / "files").iterdir())


def test_list_inside_an_archive(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "1.png").write_bytes(b"one")
    text = "# comment\n\na/1.png 1\na/1.png\n../outside.png 0\n/etc/passwd 0\na/1.png 7\n"
    items, skipped = sources.list_items(text, 3, tmp_path)
    assert [(i.name, i.label) for i in items] == [("a/1.png", 1), ("a/1.png", -1)]
    assert items[0].read() == b"one"
    assert skipped == [
        "line 5: '../outside.png' is not a path inside the archive",
        "line 6: '/etc/passwd' is not a path inside the archive",
        "line 7: label 7 is not a class (0..2)",
    ]


def test_server_paths_are_read_only_under_the_data_roots(tmp_path, settings):
    root = (tmp_path / "data").resolve()
    root.mkdir()
    (root / "in.png").write_bytes(b"inside")
    (tmp_path / "out.png").write_bytes(b"outside")
    settings.DIGITS_SERVER_DATA_ROOTS = [root]
    items, skipped = sources.list_items(f"{root}/in.png 0\n{tmp_path}/out.png 1\n", 2, None)
    assert skipped == [] and items[0].read() == b"inside"
    with pytest.raises(ValidationError, match="outside the folders this server may read"):
        items[1].read()


def test_a_list_that_is_not_text_is_refused():
    with pytest.raises(sources.SourceError, match="not UTF-8"):
        sources.decode_text(io.BytesIO(b"\xff\xfe\x00bad").getvalue(), "the list")
