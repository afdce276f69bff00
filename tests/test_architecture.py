"""The house's rules, read from the source: one import direction (no cycle among emochat's
modules, counting imports inside functions and under TYPE_CHECKING), argparse only in the
command line, and Textual only in the app."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emochat"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_names(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (``from a import b`` names
    ``a.b`` where that is a module of its own, else ``a``)."""
    names: set[str] = set()
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                names.add(submodule if submodule in MODULES else base)
    return names


def import_graph() -> dict[str, set[str]]:
    return {
        name: {target for target in imported_names(path) if target in MODULES and target != name}
        for name, path in MODULES.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_sees_lazy_and_type_only_imports() -> None:
    """The checks below are only as good as the walk: it must see an import inside a function
    and one under TYPE_CHECKING (both stand in these files today)."""
    graph = import_graph()
    assert "emochat.engine.backends.llamacpp_backend" in graph["emochat.engine.backends"]  # lazy
    assert "emochat.engine.backends.base" in graph["emochat.engine.modulation.factory"]  # typing
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_of_emochat_imports_itself_round_a_loop() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("argparse", "emochat.cli"), ("textual", "emochat.tui")],
)
def test_a_library_is_imported_only_where_it_belongs(library: str, allowed: str) -> None:
    outside = sorted(
        name
        for name, path in MODULES.items()
        if not (name == allowed or name.startswith(allowed + "."))
        and any(
            imported == library or imported.startswith(library + ".")
            for imported in imported_names(path)
        )
    )
    assert outside == [], f"{library} imported outside {allowed}: {outside}"
