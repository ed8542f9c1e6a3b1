"""Every ```python block of README.md and docs/*.md is real API: it compiles and type-checks.

Each block becomes a module that mypy checks in one run: the block's code is the body of an
``async def`` (so top-level ``await``/``async with`` read as they do in a notebook), after
the imports of the earlier blocks of the same page and the names the text leaves to the
reader. A Markdown comment right before the fence declares those names or skips the block:

    <!-- docs-check: given client: FlextApiClient; save; log -->
    <!-- docs-check: run -->
    <!-- docs-check: skip why this block cannot be checked -->

``given`` declares ``name: Type`` (a public flext_api, typing or FastAPI name) or a bare
``name`` (``Any``). ``run`` also executes the block (after the page's earlier imports):
only for a block that needs no network, no server and no name from the reader. ``skip``
must say why.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import mypy.api
import pytest

_ROOT = Path(__file__).resolve().parents[2]
_PAGES = (_ROOT / "README.md", *sorted((_ROOT / "docs").glob("*.md")))
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-check:(?P<body>.*?)-->\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Where a ``given`` type is looked up, in order.
_TYPE_MODULES = (
    "flext_api",
    "flext_api.client",
    "flext_api.cache",
    "flext_api.composition",
    "flext_api.discovery",
    "flext_api.gateway",
    "flext_api.protocols",
    "flext_api.resilience",
    "flext_api.server",
    "flext_api.storage",
    "flext_api.testing",
    "typing",
    "collections.abc",
    "fastapi",
)
_FUNCTION = "async def _docs_block() -> None:"
# FlextApiClient methods that hand ``**options`` on, and to whom: mypy checks them through
# their TypedDicts; this also names the target in the message.
_FORWARDED = {
    "batch": ("flext_api.client", "run_batch"),
    "paginate": ("flext_api.client", "Paginator"),
    "websocket": ("flext_api.protocols", "WebSocketConnection"),
    "sse": ("flext_api.protocols", "EventSource"),
}
_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
strict = true
warn_unreachable = true
follow_imports = silent
# A snippet may leave its own functions unannotated; calls into flext_api stay checked.
disallow_untyped_defs = false
disallow_incomplete_defs = false
disallow_untyped_calls = false
disallow_untyped_decorators = false
check_untyped_defs = true
# ``...`` stands for a body the reader writes.
disable_error_code = type-arg, var-annotated, no-any-return, unused-ignore, empty-body

[mypy-redis.*,structlog.*,strawberry.*]
ignore_missing_imports = true
"""


@dataclass(frozen=True, slots=True)
class DocBlock:
    """One ```python block: where it is, its code, and its docs-check markers."""

    page: str
    line: int
    code: str
    skip: str | None
    given: tuple[str, ...]
    carried_imports: tuple[str, ...]
    run: bool = False

    @property
    def id(self) -> str:
        """``page.md:LINE`` of the block's first code line."""
        return f"{self.page}:{self.line}"


@dataclass(frozen=True, slots=True)
class _Marker:
    line: int
    kind: str
    argument: str


def _parse_marker(body: str, line: int) -> _Marker:
    kind, _, argument = body.strip().partition(" ")
    return _Marker(line, kind, argument.strip())


def _module_imports(code: str) -> tuple[str, ...]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ()
    return tuple(
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    )


def _page_blocks(path: Path) -> tuple[list[DocBlock], list[str]]:
    """The page's Python blocks, and the problems with its markers."""
    page = path.relative_to(_ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[DocBlock] = []
    problems: list[str] = []
    carried: list[str] = []
    pending: list[_Marker] = []
    index = 0
    while index < len(lines):
        marker = _MARKER.match(lines[index])
        if marker:
            pending.append(_parse_marker(marker["body"], index + 1))
            index += 1
            continue
        fence = _FENCE.match(lines[index])
        if not fence or not fence["lang"]:
            problems.extend(
                f"{page}:{m.line}: docs-check marker not before a fence" for m in pending
            )
            pending = []
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not re.match(rf"^{fence['indent']}```\s*$", lines[end]):
            end += 1
        if fence["lang"] == "python":
            code = textwrap.dedent("\n".join(lines[index + 1 : end])) + "\n"
            skip: str | None = None
            given: list[str] = []
            run = False
            for m in pending:
                if m.kind == "skip":
                    skip = m.argument
                elif m.kind == "run" and not m.argument:
                    run = True
                elif m.kind == "given":
                    given.extend(part.strip() for part in m.argument.split(";") if part.strip())
                else:
                    problems.append(f"{page}:{m.line}: unknown docs-check marker {m.kind!r}")
            if run and given:
                problems.append(f"{page}:{index + 2}: a block to run cannot rely on given names")
            blocks.append(DocBlock(page, index + 2, code, skip, tuple(given), tuple(carried), run))
            carried.extend(_module_imports(code))
        else:
            problems.extend(
                f"{page}:{m.line}: docs-check marker before a {fence['lang']} block"
                for m in pending
            )
        pending = []
        index = end + 1
    problems.extend(f"{page}:{m.line}: docs-check marker not before a fence" for m in pending)
    return blocks, problems


def _collect() -> tuple[list[DocBlock], list[str]]:
    blocks: list[DocBlock] = []
    problems: list[str] = []
    for path in _PAGES:
        page_blocks, page_problems = _page_blocks(path)
        blocks.extend(page_blocks)
        problems.extend(page_problems)
    return blocks, problems


_BLOCKS, _MARKER_PROBLEMS = _collect()


def _resolve_type(name: str) -> str:
    """The module a ``given`` type name is imported from."""
    modules = [importlib.import_module(module_name) for module_name in _TYPE_MODULES]
    for module in modules:  # an exported name first: flext_api.testing imports Any too
        if name in getattr(module, "__all__", ()):
            return module.__name__
    for module in modules:
        if hasattr(module, name):
            return module.__name__
    msg = f"given type {name!r} is not a public name of {', '.join(_TYPE_MODULES)}"
    raise LookupError(msg)


def _given_lines(given: tuple[str, ...]) -> list[str]:
    """Declarations for the names a block leaves to the reader, types imported under aliases."""
    lines: list[str] = []
    for declaration in given:
        name, _, type_text = declaration.partition(":")
        if not type_text.strip():
            lines.append(f"{name.strip()}: typing.Any")
            continue

        def alias(match: re.Match[str]) -> str:
            word = match[0]
            if hasattr(builtins, word):
                return word
            lines.insert(0, f"from {_resolve_type(word)} import {word} as _given_{word}")
            return f"_given_{word}"

        lines.append(f"{name.strip()}: {_IDENTIFIER.sub(alias, type_text.strip())}")
    return lines


@dataclass(frozen=True, slots=True)
class _Module:
    block: DocBlock
    source: str
    header_lines: int

    def doc_location(self, module_line: int) -> str:
        """``page.md:LINE`` for a line of the generated module."""
        if module_line <= self.header_lines + 1:
            return (
                f"{self.block.id} (in the imports carried from earlier blocks or the given names)"
            )
        return f"{self.block.page}:{self.block.line + module_line - self.header_lines - 2}"


def _module_for(block: DocBlock) -> _Module:
    header = ["import typing", *block.carried_imports, *_given_lines(block.given)]
    body = textwrap.indent(block.code, "    ", lambda line: True)
    source = "\n".join([*header, _FUNCTION, body])
    return _Module(block, source, len(header))


def _compile(block: DocBlock) -> types.CodeType:
    """The block's code object; errors and tracebacks name the Markdown file and line."""
    source = "\n" * (block.line - 1) + block.code
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code: types.CodeType = compile(source, block.page, "exec", flags=flags, dont_inherit=True)
    return code


def _compiles(block: DocBlock) -> bool:
    try:
        _compile(block)
    except SyntaxError:
        return False
    return True


def _imported_flext_api_names(block: DocBlock) -> list[str]:
    """Names the block imports from flext_api that do not exist."""
    missing: list[str] = []
    for node in ast.walk(ast.parse(block.code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flext_api"):
            module = importlib.import_module(node.module or "")
            missing.extend(
                f"{node.module}.{a.name}" for a in node.names if not hasattr(module, a.name)
            )
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "flext_api":
                    importlib.import_module(a.name)
    return missing


def _client_names(block: DocBlock, tree: ast.Module) -> set[str]:
    """The names the block binds to a FlextApiClient (given, ``as client``, ``client = ...``)."""
    names = {
        name.strip()
        for name, _, kind in (d.partition(":") for d in block.given)
        if kind.strip() == "FlextApiClient"
    }
    for node in ast.walk(tree):
        pairs: list[tuple[ast.expr, ast.expr | None]] = []
        if isinstance(node, ast.With | ast.AsyncWith):
            pairs = [(item.context_expr, item.optional_vars) for item in node.items]
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            pairs = [(node.value, node.targets[0])]
        for value, target in pairs:
            if (
                isinstance(value, ast.Call)
                and isinstance(value.func, ast.Name)
                and value.func.id == "FlextApiClient"
                and isinstance(target, ast.Name)
            ):
                names.add(target.id)
    return names


def _forwarded_keyword_problems(block: DocBlock) -> list[str]:
    """Keywords passed to ``client.batch/paginate/websocket/sse`` that their target refuses."""
    tree = ast.parse(block.code)
    clients = _client_names(block, tree)
    problems: list[str] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in clients
            and node.func.attr in _FORWARDED
        ):
            continue
        module_name, target_name = _FORWARDED[node.func.attr]
        parameters = inspect.signature(
            getattr(importlib.import_module(module_name), target_name)
        ).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        problems.extend(
            f"{block.page}:{block.line + node.lineno - 1}: {node.func.attr}() takes no {k.arg}="
            for k in node.keywords
            if k.arg is not None and k.arg not in parameters
        )
    return problems


@pytest.fixture(scope="session")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """mypy's errors over every checked block, one run, keyed by block id."""
    directory = tmp_path_factory.mktemp("docs_examples")
    modules: dict[str, _Module] = {}
    errors: dict[str, list[str]] = {}
    for number, block in enumerate(_BLOCKS):
        # A block that does not compile fails on its own; mypy would stop at it.
        if block.skip is None and _compiles(block):
            name = f"docs_block_{number:03d}"
            try:
                modules[name] = _module_for(block)
            except LookupError as exc:
                errors[block.id] = [f"{block.id}: {exc}"]
                continue
            (directory / f"{name}.py").write_text(modules[name].source, encoding="utf-8")
    config = directory / "mypy.ini"
    config.write_text(_MYPY_CONFIG, encoding="utf-8")
    stdout, stderr, _ = mypy.api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(directory / ".mypy_cache"),
            "--no-error-summary",
            "--show-error-codes",
            "--hide-error-context",
            *(str(directory / f"{name}.py") for name in modules),
        ]
    )
    pattern = re.compile(
        r"^(?:.*[/\\])?(?P<name>docs_block_\d+)\.py:(?P<line>\d+): (?P<message>.*)$"
    )
    for line in stdout.splitlines():
        match = pattern.match(line)
        if match is None:
            errors.setdefault("<mypy>", []).append(line)
            continue
        module = modules[match["name"]]
        location = module.doc_location(int(match["line"]))
        errors.setdefault(module.block.id, []).append(f"{location}: {match['message']}")
    if stderr.strip():
        errors.setdefault("<mypy>", []).append(stderr)
    return errors


def test_every_page_has_its_blocks_collected() -> None:
    """The collector finds the Python blocks of README.md and docs/ and no stray markers."""
    assert len(_BLOCKS) >= 60
    assert {b.page for b in _BLOCKS} >= {"README.md", "docs/caching.md", "docs/server.md"}
    assert _MARKER_PROBLEMS == []


def test_mypy_ran_over_the_blocks(mypy_errors: dict[str, list[str]]) -> None:
    """mypy itself reported nothing outside the blocks (no crash, no config error)."""
    problems = mypy_errors.get("<mypy>", [])
    assert not problems, "\n".join(problems)


async def _run(block: DocBlock) -> None:
    """Execute the block as a reader would, top-level ``await`` included."""
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile("\n".join(block.carried_imports), block.id, "exec"), namespace)
    outcome = eval(_compile(block), namespace)  # a coroutine when the block awaits at top level
    if outcome is not None:
        await outcome


@pytest.mark.parametrize("block", _BLOCKS, ids=[b.id for b in _BLOCKS])
async def test_block_is_real_api(block: DocBlock, mypy_errors: dict[str, list[str]]) -> None:
    """The block compiles, its flext_api imports exist, and mypy finds no error in it."""
    if block.skip is not None:
        assert block.skip, f"{block.id}: a docs-check skip must give its reason"
        pytest.skip(block.skip)
    _compile(block)
    missing = _imported_flext_api_names(block)
    assert not missing, f"{block.id}: imports names flext_api does not have: {missing}"
    errors = [*mypy_errors.get(block.id, []), *_forwarded_keyword_problems(block)]
    assert not errors, "\n".join(errors)
    if block.run:
        await _run(block)
