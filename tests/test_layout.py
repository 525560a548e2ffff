"""The floor plan holds: `app/`'s root keeps only the application factory beside its folders,
the modules import one another in one direction (no circle), and no module reaches into
another's private names."""

import ast
from collections.abc import Iterator
from pathlib import Path

import app

APP = Path(app.__file__).parent
ROOT_FILES = {"__init__.py", "main.py"}


def modules() -> dict[str, Path]:
    """Every module of the `app` package by its dotted name (`app.cli` for a package)."""
    found = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, str]]:
    """(module imported, name imported from it) for each import of Keyhouse's own in `path`,
    at the top or inside a function alike."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, "") for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield (submodule, "") if submodule in known else (node.module, alias.name)


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {module for module, _ in imports(path, known)} for name, path in known.items()}


def test_the_root_of_app_holds_only_the_factory_and_folders() -> None:
    files = {path.name for path in APP.iterdir() if path.is_file() and path.suffix == ".py"}
    assert files == ROOT_FILES


def test_no_module_imports_a_private_name_of_another() -> None:
    known = modules()
    private = [
        f"{name} imports {module}.{imported}"
        for name, path in known.items()
        for module, imported in imports(path, known)
        if imported.startswith("_") and module != name
    ]
    assert private == []


def test_imports_flow_one_way() -> None:
    """No circle in the import graph: a depth-first walk never meets a module it is inside."""
    edges = graph()
    done: set[str] = set()

    def walk(name: str, inside: list[str]) -> None:
        if name in inside:
            circle = [*inside[inside.index(name) :], name]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if name in done:
            return
        for imported in sorted(edges.get(name, ())):
            if imported != name:
                walk(imported, [*inside, name])
        done.add(name)

    for module in sorted(edges):
        walk(module, [])
