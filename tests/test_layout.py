"""The shape of the code: no import cycle between the modules of ``webapp`` and ``simulator``.

Every import counts, also one inside a function (a lazy import hides a cycle, it does not remove it); only
imports under ``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("webapp", "simulator")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports (a package's ``__init__`` when a name comes from it)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text(), str(path))]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in known else base)
    return {module for module in found if module in known and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def test_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycles_are_found(graph, expected):
    assert cycles(graph) == expected


def test_a_lazy_import_counts_and_type_checking_does_not(tmp_path, monkeypatch):
    package = tmp_path / "webapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from webapp import b\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from webapp import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    known = {module_name(path): path for path in package.rglob("*.py")}
    assert imported("webapp.a", package / "a.py", known) == {"webapp.b"}
    assert imported("webapp.b", package / "b.py", known) == set()


def layout_block() -> str:
    """The README's code block that lists the tree (the one after "## Architecture" that starts with webapp/)."""
    text = (ROOT / "README.md").read_text()
    architecture = text[text.index("## Architecture") :]
    return next(block for block in architecture.split("```")[1::2] if block.lstrip().startswith("webapp/"))


def test_the_readme_layout_names_every_module_and_folder():
    block = layout_block()
    listed = {word.rstrip(",:") for word in block.split()}
    entries = [
        *(f"webapp/{path.name}" for path in (ROOT / "webapp").iterdir() if path.suffix == ".py"),
        *(f"webapp/{path.name}/" for path in (ROOT / "webapp").iterdir() if path.is_dir() and path.name[0] != "_"),
        *("worker.py", "simulator/", "migrations/", "tests/", "bench/", "examples/", "docs/", "templates/", "static/"),
    ]
    missing = [entry for entry in entries if entry not in listed]
    assert missing == []
    named = {word for word in listed if word.startswith("webapp/")}
    assert [word for word in named if not (ROOT / word).exists()] == []
