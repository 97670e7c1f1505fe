"""No function in ``apps/`` (migrations aside) is longer than 50 lines: one that grows past
that does several things, and wants to be split where they part."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50


def long_functions(root: Path, limit: int = LIMIT) -> list[str]:
    """``path:line name (n lines)`` of each function or method over ``limit`` lines
    (from ``def`` to its last line, docstring included, decorators not)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (tmp_path / "long.py").write_text(f"def too_long():\n{body}\n\n\ndef short():\n    pass\n")
    assert [line.split(" ")[1] for line in long_functions(tmp_path)] == ["too_long"]


def test_no_function_in_apps_is_over_50_lines():
    assert long_functions(ROOT / "apps") == []
