"""train/'s modules depend one way: no module imports, even inside a function, one that imports it back.

Circles made the order of imports matter (a module half-initialised when its partner asked for a
name) and made every small module drag in the big ones; shared pieces live in small lower modules
instead (image_io, run_files, run_data, objectives, keras_io, views).
"""

from __future__ import annotations

import ast
from pathlib import Path

TRAIN = Path(__file__).resolve().parents[1] / "train"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("train."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "train":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("train."))
    return found - {path.stem}


def _graph() -> dict[str, set[str]]:
    return {path.stem: _imports(path) for path in TRAIN.glob("*.py") if path.stem != "__main__"}


def test_train_has_no_import_circles() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                circle = path[path.index(other):] + [other]
                raise AssertionError("import circle: " + " -> ".join(circle))
            if other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_check_sees_imports_inside_functions() -> None:
    graph = _graph()
    assert "csv_data" in graph["data"]  # imported inside _load_tree
    assert "recalibrate" in graph["training"]  # imported inside the callback
