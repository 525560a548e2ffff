"""The client is installable on its own, with httpx as its one dependency."""

import ast
import sys
import tomllib
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk"
PACKAGE = SDK / "keyhouse_client"


def test_its_distribution_depends_on_httpx_alone() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    assert [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]] == ["httpx"]


def test_it_imports_nothing_but_the_standard_library_and_httpx() -> None:
    """In particular nothing of the server (`app`), which a backend does not install."""
    imported: set[str] = set()
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == {"httpx"}


def test_it_ships_its_type_information() -> None:
    assert (PACKAGE / "py.typed").is_file()
