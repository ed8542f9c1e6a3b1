"""The layer order of DESIGN §1, read from the import graph of every module in src/flext_api.

Each module's imports are parsed with ``ast`` (module level, inside functions and under
``if TYPE_CHECKING:`` alike: a type-only import is still a dependency). A module may
import its own layer and the layers below it, never one above; the top-level package
and the facade may import anything. Module-level imports (the ones that run at import
time) must form no circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import flext_api

SRC = Path(flext_api.__file__).parent
PACKAGE = "flext_api"

#: The core, bottom to top: a core module imports only the ones before it. The one
#: exception is a type-only reference (``if TYPE_CHECKING:``) from the error tree to
#: the request and response it carries, as httpx's ``_exceptions`` does.
CORE = (
    "flext_api._clock",
    "flext_api._context",
    "flext_api._redact",
    "flext_api._lazy",
    "flext_api._atomic",
    "flext_api._logger",
    "flext_api._version",
    "flext_api._numbers",
    "flext_api._exactjson",
    "flext_api._errors",
    "flext_api._syntax",
    "flext_api._result",
    "flext_api._server_config",
    "flext_api._config",
    "flext_api._models",
)
TYPE_ONLY_CORE_EXCEPTIONS = {("flext_api._errors", "flext_api._models")}

#: Bottom to top (DESIGN §1). A module belongs to the longest prefix listed here.
LAYERS: tuple[tuple[str, ...], ...] = (
    CORE,
    ("flext_api.resilience",),
    ("flext_api.transports",),
    ("flext_api.discovery",),
    ("flext_api.client",),
    ("flext_api.cache",),
    ("flext_api.protocols",),
    ("flext_api.storage",),
    ("flext_api.composition",),
    ("flext_api.server", "flext_api.middleware"),
    ("flext_api.gateway",),
    ("flext_api.cli",),
)

#: May import anything: the package itself, its test helpers and the FLEXT facade.
TOP = {"flext_api", "flext_api.testing", "flext_api._facade"}

#: Sanctioned upward edges (importer, imported). FlextApiClient.websocket() and .sse()
#: are pinned on the client (DESIGN §2) but return connections of the protocols layer:
#: the import sits inside those methods, so nothing of the protocols loads with the client.
#: flext_api.discovery names ServiceClient (pinned there, DESIGN §2), a thin wrapper
#: that lives with the client it wraps; discovery resolves it lazily.
REEXPORTS = {
    ("flext_api.client._client", "flext_api.protocols"),
    ("flext_api.discovery", "flext_api.client._service"),
}

EXAMPLES = Path(__file__).parents[1] / "examples"


@dataclass(frozen=True)
class Import:
    target: str
    line: int
    module_level: bool
    type_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> Iterator[str]:
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join([*base, node.module] if node.module else base)
    else:
        prefix = node.module or ""
    for alias in node.names:
        sub = f"{prefix}.{alias.name}"
        yield sub if sub in MODULES else prefix


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, module_level: bool, type_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    found.append(Import(alias.name, node.lineno, module_level, type_only))
            return
        if isinstance(node, ast.ImportFrom):
            for target in _resolve(module, is_package, node):
                if target.split(".")[0] == PACKAGE:
                    found.append(Import(target, node.lineno, module_level, type_only))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, module_level, True)
            for child in node.orelse:
                visit(child, module_level, type_only)
            return
        inner = module_level and not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        for sub in ast.iter_child_nodes(node):
            visit(sub, inner, type_only)

    visit(tree, True, False)
    return found


def layer_of(module: str) -> int | None:
    """The index of ``module``'s layer in LAYERS, or None for TOP."""
    if module in TOP:
        return None
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer of LAYERS (DESIGN §1): add it there")
    return best


GRAPH = {module: _imports(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    """Every module under src/flext_api is placed in LAYERS or TOP."""
    for module in MODULES:
        assert module in TOP or layer_of(module) is not None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in TOP))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    """A module imports only its own layer and the ones below (DESIGN §1)."""
    own = layer_of(module)
    assert own is not None
    upward = []
    for imp in GRAPH[module]:
        if (module, imp.target) in REEXPORTS:
            continue
        target = layer_of(imp.target)
        if target is None or target > own or (own == 0 and target == 0):
            if own == 0 and target == 0:
                continue  # within the core, the order is CORE's (next test)
            upward.append(f"line {imp.line}: {imp.target}")
    assert upward == [], f"{module} imports from above its layer"


def test_core_modules_import_only_the_ones_below_them() -> None:
    """Inside the core, each module imports only modules before it in CORE."""
    wrong = []
    for module in CORE:
        assert module in MODULES, f"{module} is listed in CORE but does not exist"
        for imp in GRAPH[module]:
            if imp.target not in CORE or imp.target == module:
                continue
            below = CORE.index(imp.target) < CORE.index(module)
            allowed = imp.type_only and (module, imp.target) in TYPE_ONLY_CORE_EXCEPTIONS
            if not below and not allowed:
                wrong.append(f"{module} line {imp.line}: {imp.target}")
    assert wrong == []


def test_module_level_imports_form_no_circle() -> None:
    """The imports that run when a module is imported form no circle."""
    edges = {
        module: {
            imp.target
            for imp in imports
            if imp.module_level and not imp.type_only and imp.target in MODULES
        }
        for module, imports in GRAPH.items()
    }
    done: set[str] = set()
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(edges[node]):
            # A package's __init__ importing its own submodules is how packages work;
            # a submodule importing back through its package __init__ is the circle.
            if nxt != node and not (node != nxt and nxt.startswith(node + ".")):
                circle = walk(nxt)
                if circle is not None:
                    return circle
        path.pop()
        done.add(node)
        return None

    for module in sorted(edges):
        circle = walk(module)
        assert circle is None, " -> ".join(circle or [])


def test_the_layer_table_catches_an_upward_import() -> None:
    """The check is not vacuous: a client module importing the cache is flagged."""
    assert layer_of("flext_api.client._client") == 4
    assert layer_of("flext_api.cache._smart") == 5
    assert layer_of("flext_api.gateway._router") == 10
    assert layer_of("flext_api._facade") is None


def _private(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_examples_use_public_names_only(example: Path) -> None:
    """examples/ import flext_api's public modules and names only, as users would."""
    private = []
    for node in ast.walk(ast.parse(example.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            names = [alias.name for alias in node.names]
            if _private(node.module or "") or any(_private(n) for n in names):
                private.append(f"line {node.lineno}: from {node.module} import {names}")
        elif isinstance(node, ast.Import):
            private += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith(PACKAGE) and _private(a.name)
            ]
    assert private == []
