"""The imports between the platform's modules go one way.

Every ``import`` in ``apps/`` and ``digits_site/`` counts, at module level or inside a
function (a function-level import hides a cycle, it does not remove it), except those
under ``if TYPE_CHECKING:``. Layers, bottom up: ``apps.accounts`` and ``apps.core``,
then ``apps.jobs`` with ``apps.cluster`` (which node runs what) and ``apps.usage`` (quotas,
accounting) beside it, ``apps.datasets``, ``apps.mlmodels``, ``apps.evaluations``, and
``digits_site`` (settings, URLs, the home page) above them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apps", "digits_site")

#: What ``apps.core`` may use of ``apps.accounts``: who a user is and which teams they
#: are in (permissions and sharing are about teams; body limits accept API tokens).
#: Never the accounts pages or API.
CORE_MAY_IMPORT = {"apps.accounts.models", "apps.accounts.authentication"}
ABOVE_CORE = (
    "apps.jobs", "apps.cluster", "apps.usage", "apps.datasets", "apps.mlmodels",
    "apps.evaluations", "apps.inference", "apps.accounts", "digits_site",
)  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST) -> list[str]:
    """Dotted names imported anywhere in ``tree`` (``from a import b`` gives ``a.b``)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of apps/ and digits_site/ it imports}``."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in _imported_names(ast.parse(path.read_text()))}
        graph[module] = {t for t in targets if t and t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "apps.jobs.runner" in graph["apps.jobs.tasks"]
    assert "apps.jobs.diagnostics" in graph["apps.jobs.kinds"]  # inside WorkerCheck.run


def test_find_cycles_finds_one():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert find_cycles(import_graph()) == []


def test_core_imports_nothing_above_it():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.startswith("apps.core")
        for target in targets
        if target.startswith(ABOVE_CORE) and target not in CORE_MAY_IMPORT
    )
    assert wrong == []


def test_no_app_imports_the_site():
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.startswith("apps.")
        for target in targets
        if target.startswith("digits_site")
    )
    assert wrong == []


def test_models_import_nothing_of_evaluations():
    """Evaluations sit above models: the model pages show them through template tags."""
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if module.startswith("apps.mlmodels")
        for target in targets
        if target.startswith("apps.evaluations")
    )
    assert wrong == []
