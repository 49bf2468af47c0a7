"""The house rules of the source tree, read from the code with `ast`:

* no import cycle among the modules of `services/`, `shared/` and the CLI package;
* services never import one another;
* `shared` imports no service, no simulator and not the CLI package;
* no source folder holds more than about 12 modules directly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "shared", "frontdesk")
MAX_MODULES_PER_FOLDER = 12


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            files[module_name(path)] = path
    return files


def imported_names(path: Path) -> Iterator[str]:
    """Every module name an import statement in the file names, at any depth (a function-level
    import is still a dependency)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        graph[name] = {dep for dep in imported_names(path) if dep in files and dep != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
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


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph(source_files()))
    assert found == [], f"import cycles: {found}"


def external_imports(files: dict[str, Path]) -> Iterator[tuple[str, str]]:
    for name, path in files.items():
        for dep in imported_names(path):
            yield name, dep


def test_services_never_import_one_another() -> None:
    offences = []
    for name, dep in external_imports(source_files(("services",))):
        own = name.split(".")[1] if name.count(".") >= 1 else ""
        if dep.startswith("services.") and dep.split(".")[1] != own:
            offences.append(f"{name} imports {dep}")
    assert offences == []


@pytest.mark.parametrize("forbidden", ["services", "sim", "frontdesk"])
def test_shared_imports_no_service_simulator_or_cli(forbidden: str) -> None:
    offences = [
        f"{name} imports {dep}"
        for name, dep in external_imports(source_files(("shared",)))
        if dep == forbidden or dep.startswith(forbidden + ".")
    ]
    assert offences == []


def test_services_import_no_simulator_or_cli() -> None:
    offences = [
        f"{name} imports {dep}"
        for name, dep in external_imports(source_files(("services",)))
        if dep.split(".")[0] in ("sim", "frontdesk")
    ]
    assert offences == []


def test_no_source_folder_is_a_flat_bag() -> None:
    crowded = {}
    for package in PACKAGES:
        for folder in [ROOT / package, *(p for p in (ROOT / package).rglob("*") if p.is_dir())]:
            if "migrations" in folder.parts or "__pycache__" in folder.parts:
                continue
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(ROOT))] = len(modules)
    assert crowded == {}
