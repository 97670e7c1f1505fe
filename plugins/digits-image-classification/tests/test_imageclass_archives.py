"""Archive checks and extraction, in-process: nothing unsafe is ever written."""

import io
import os
import tarfile
import zipfile

import pytest
from digits_imageclass.archives import ArchiveRefused, Limits, extract_archive, is_archive
from digits_imageclass.sources import unwrap
from imageclass_helpers import Special, make_tar, make_zip

GOOD = [("flowers/daisy/1.png", b"a" * 10), ("flowers/rose/deep/2.png", b"b" * 20)]


def files_below(folder):
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


@pytest.fixture
def target(tmp_path):
    return tmp_path / "out" / "extracted"


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
def test_good_archives_are_extracted(tmp_path, target, kind):
    path = tmp_path / f"a.{kind}"
    if kind == "zip":
        make_zip(path, GOOD)
    else:
        make_tar(path, GOOD, mode="w" if kind == "tar" else f"w:{kind[4:]}")
    assert extract_archive(path, "a", target, Limits()) == 2
    assert files_below(target) == ["flowers/daisy/1.png", "flowers/rose/deep/2.png"]
    assert (target / "flowers/rose/deep/2.png").read_bytes() == b"b" * 20
    assert unwrap(target) == target / "flowers"


def test_windows_separators_and_dot_components_stay_inside(tmp_path, target):
    path = make_zip(tmp_path / "w.zip", [("./cats\\1.png", b"x"), ("dogs/./2.png", b"y")])
    extract_archive(path, "w.zip", target, Limits())
    assert files_below(target) == ["cats/1.png", "dogs/2.png"]


UNSAFE = {
    "zip-dotdot": ("zip", [*GOOD, ("../evil.png", b"x")], "member '../evil.png' has a '..' path"),
    "zip-nested-dotdot": ("zip", [("a/../../evil", b"x")], "'a/../../evil' has a '..' path"),
    "zip-backslash-dotdot": ("zip", [("a\\..\\..\\evil", b"x")], "has a '..' path component"),
    "zip-absolute": ("zip", [*GOOD, ("/tmp/evil.png", b"x")], "'/tmp/evil.png' has an absolute"),
    "zip-drive": ("zip", [("C:/evil.png", b"x")], "'C:/evil.png' has an absolute path"),
    "zip-symlink": ("zip", [*GOOD, ("flowers/link.png", None)], "'flowers/link.png' is a symbolic"),
    "tar-dotdot": ("tar", [*GOOD, ("../evil.png", b"x")], "member '../evil.png' has a '..' path"),
    "tar-absolute": ("tar", [("/etc/evil", b"x")], "member '/etc/evil' has an absolute path"),
    "tar-symlink": (
        "tar", [*GOOD, ("flowers/daisy/l.png", Special(tarfile.SYMTYPE, "/etc/passwd"))],
        "member 'flowers/daisy/l.png' is a symbolic link",
    ),
    "tar-hardlink": (
        "tar", [*GOOD, ("flowers/daisy/h.png", Special(tarfile.LNKTYPE, "flowers/daisy/1.png"))],
        "member 'flowers/daisy/h.png' is a hard link",
    ),
    "tar-chardev": ("tar", [*GOOD, ("flowers/null", Special(tarfile.CHRTYPE))], "'flowers/null' is a device"),
    "tar-blockdev": ("tar", [("sda", Special(tarfile.BLKTYPE))], "member 'sda' is a device"),
    "tar-fifo": ("tar", [*GOOD, ("flowers/pipe", Special(tarfile.FIFOTYPE))], "'flowers/pipe' is a FIFO"),
}  # fmt: skip


@pytest.mark.parametrize("case", UNSAFE, ids=list(UNSAFE))
def test_unsafe_members_refuse_the_whole_archive_before_anything_is_written(tmp_path, target, case):
    kind, members, message = UNSAFE[case]
    path = tmp_path / f"bad.{kind}"
    (make_zip if kind == "zip" else make_tar)(path, members)
    with pytest.raises(ArchiveRefused, match=message.replace("(", r"\(")) as refused:
        extract_archive(path, "bad." + kind, target, Limits())
    assert str(refused.value).startswith(f"bad.{kind}: ")
    assert files_below(target) == []  # not even the good members before the bad one
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "out" / "evil").exists()


def test_too_many_members_are_refused(tmp_path, target):
    path = make_zip(tmp_path / "many.zip", [(f"c/{i}.png", b"x") for i in range(6)])
    with pytest.raises(ArchiveRefused, match=r"more than 5 members .* at member 'c/5.png'"):
        extract_archive(path, "many.zip", target, Limits(max_members=5))
    assert extract_archive(path, "many.zip", target, Limits(max_members=6)) == 6


def test_too_many_uncompressed_bytes_are_refused(tmp_path, target):
    # A zip bomb in miniature: 3 MB of zeros compress to a few kB.
    members = [
        ("a/1.png", bytes(1_000_000)),
        ("a/2.png", bytes(1_000_000)),
        ("b/3.png", bytes(1_000_000)),
    ]
    for path in (make_zip(tmp_path / "big.zip", members), make_tar(tmp_path / "big.tgz", members)):
        assert os.path.getsize(path) < 100_000
        with pytest.raises(ArchiveRefused, match=r"exceeds 2500000 bytes .* at member 'b/3.png'"):
            extract_archive(path, path.name, target, Limits(max_bytes=2_500_000))
        assert files_below(target) == []


def test_a_member_larger_than_its_header_says_is_refused(tmp_path, target):
    path = tmp_path / "lying.zip"
    make_zip(path, [("a/1.png", b"x" * 1000)])
    data = bytearray(path.read_bytes())
    # Patch the uncompressed size (1000) in both headers down to 10; the CRC check would
    # catch it too — whichever comes first, the archive is refused.
    data = data.replace((1000).to_bytes(4, "little"), (10).to_bytes(4, "little"))
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="lying.zip"):
        extract_archive(path, "lying.zip", target, Limits())


def test_files_that_are_not_archives_are_refused(tmp_path, target):
    path = tmp_path / "notes.zip"
    path.write_bytes(b"not an archive at all" * 100)
    with pytest.raises(ArchiveRefused, match="notes.zip is neither a zip nor a tar archive"):
        extract_archive(path, "notes.zip", target, Limits())
    assert not is_archive(io.BytesIO(path.read_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a", b"b")
    assert is_archive(buffer)


def test_unwrap_stops_at_the_class_folders(tmp_path):
    root = tmp_path / "r"
    (root / "only" / "cat").mkdir(parents=True)
    (root / "only" / "dog").mkdir()
    (root / "__MACOSX").mkdir()
    assert unwrap(root) == root / "only"
    (root / "only" / "stray.png").write_bytes(b"")
    assert unwrap(root) == root / "only"
    flat = tmp_path / "flat"
    (flat / "cat").mkdir(parents=True)
    (flat / "cat" / "1.png").write_bytes(b"")
    assert unwrap(flat) == flat  # a single folder of images is a (single) class
