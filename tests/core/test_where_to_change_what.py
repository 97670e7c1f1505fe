"""docs/where-to-change-what.md names modules that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "where-to-change-what.md"
#: A path in backticks: a file or folder below one of the project's top-level folders.
PATH = re.compile(r"`((?:apps|digits_site|plugins|tests|docs)/[^`\s]*)`")


def named_paths(text: str) -> list[str]:
    return PATH.findall(text)


def test_the_check_reads_paths_from_backticks():
    text = "| x | `apps/a.py`, `apps/b/` (`OwnedQuerySet.visible_to`) and `services.py` |"
    assert named_paths(text) == ["apps/a.py", "apps/b/"]


def test_every_path_the_page_names_exists():
    paths = named_paths(DOC.read_text())
    assert len(paths) > 40
    assert [p for p in paths if not (ROOT / p).exists()] == []
