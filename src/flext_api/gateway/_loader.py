"""Load a gateway config from YAML: parse, validate whole, report every error with its place.

YAML is composed into a node tree first (the parser keeps line numbers there), then
validated by :class:`GatewayConfig`; each validation error is reported as
``routes[0].match.path_prefix (line 7): reason``. Nothing is applied until the whole
file is valid, so a reload can call :func:`load_config` and keep serving on failure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .._errors import ConfigError, ErrorCode
from .._result import FlextResult
from ._config import GatewayConfig
from ._headers import rule_problem

__all__ = ["load_config", "parse_config"]


def load_config(path: str | Path) -> FlextResult[GatewayConfig]:
    """Read and validate the YAML file at ``path`` (a ``CONFIG_ERROR`` failure if invalid)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(f"cannot read gateway config {source}: {exc}", exc)
    return parse_config(text, source=str(source))


def parse_config(text: str, *, source: str = "<string>") -> FlextResult[GatewayConfig]:
    """Validate YAML ``text``; ``source`` names it in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        problem = _alias_problem(node)
        if problem is not None:
            return _fail(f"{source}{problem}", None)
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return _fail(f"{source}{where}: not valid YAML: {problem}", exc)
    except RecursionError as exc:  # PyYAML composes and constructs recursively
        return _fail(f"{source}: not valid YAML: nested too deeply", exc)
    except (ValueError, TypeError, LookupError, AttributeError) as exc:
        # PyYAML's constructors raise these plainly on some scalars: a timestamp that is
        # no date (2024-13-45), `!!int abc`, `!!bool maybe`, `!!timestamp x`, an int of
        # 5,000 digits.
        return _fail(f"{source}: not valid YAML: a value cannot be read: {exc!r}", exc)
    if not isinstance(data, dict):
        return _fail(f"{source}: the gateway config must be a mapping at the top level", None)
    twice = _duplicate_key(node)
    if twice is not None:
        # YAML keeps the last of two equal keys without a word: a second `routes:` would
        # drop every route of the first.
        key, line, first = twice
        return _fail(
            f"{source} (line {line}): key {key!r} is given twice in one mapping "
            f"(first on line {first})",
            None,
        )
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err, node) for err in exc.errors()]
        return _fail(f"{source}: invalid gateway config:\n  " + "\n  ".join(lines), exc)
    except ConfigError as exc:
        # The server module's AuthConfig (the `auth` sections) checks with ConfigError,
        # which pydantic does not turn into a ValidationError; its message names the key
        # and is all it says (not chained: it may quote a URL with its password).
        return _fail(f"{source}: invalid gateway config:\n  {exc.message}", None)
    lines = [
        _describe({"loc": loc, "type": "value_error", "msg": problem}, node)
        for loc, problem in _rule_problems(config)
    ]
    if lines:
        return _fail(f"{source}: invalid gateway config:\n  " + "\n  ".join(lines), None)
    return FlextResult.ok(config)


def _rule_problems(config: GatewayConfig) -> list[tuple[tuple[int | str, ...], str]]:
    """The header rules of ``config`` the proxy cannot honour (see :func:`rule_problem`):
    each one's place in the file and why."""
    places: list[tuple[tuple[int | str, ...], dict[str, str]]] = []
    for index, route in enumerate(config.routes):
        at: tuple[int | str, ...] = ("routes", index)
        places.append(((*at, "headers", "request_add"), route.headers.request_add))
        places.append(((*at, "headers", "response_add"), route.headers.response_add))
        if route.transform is not None:
            places.append(
                ((*at, "transform", "request_headers_add"), route.transform.request_headers_add)
            )
    defaults = config.edge.defaults.transform
    if defaults is not None:
        places.append(
            (("edge", "defaults", "transform", "request_headers_add"), defaults.request_headers_add)
        )
    return [
        ((*loc, name), problem)
        for loc, rules in places
        for name, value in rules.items()
        if (problem := rule_problem(name, value)) is not None
    ]


#: Nodes a config may hold once its aliases are expanded: a YAML "billion laughs" (aliases
#: of aliases) is a few lines that validation would walk for ever.
_MAX_EXPANDED_NODES = 1_000_000


def _duplicate_key(root: yaml.Node | None) -> tuple[str, int, int] | None:
    """The first key given twice in a mapping of the tree: (key, its line, first line).

    Each node is visited once: aliases make the tree a graph, with cycles (``&a [*a]``).
    """
    pending = [] if root is None else [root]
    seen_nodes: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    line = key.start_mark.line + 1
                    if key.value in seen:
                        return key.value, line, seen[key.value]
                    seen[key.value] = line
                pending.append(value)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
    return None


def _alias_problem(root: yaml.Node | None) -> str | None:
    """Why the aliases of the tree cannot be expanded: one that contains itself, or an
    expansion past :data:`_MAX_EXPANDED_NODES`. None when they can."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        # Iterative post-order over the graph: a deep config must not hit the recursion
        # limit either.
        stack: list[tuple[yaml.Node, bool]] = [(node, False)]
        while stack:
            current, done = stack.pop()
            key = id(current)
            if done:
                open_nodes.discard(key)
                children = _children(current)
                total = 1 + sum(sizes[id(c)] for c in children)
                sizes[key] = min(total, _MAX_EXPANDED_NODES + 1)
                continue
            if key in sizes:
                continue
            if key in open_nodes:
                raise _Cycle(current.start_mark.line + 1)
            open_nodes.add(key)
            stack.append((current, True))
            stack.extend((child, False) for child in _children(current) if id(child) not in sizes)
        return sizes[id(node)]

    if root is None:
        return None
    try:
        total = size(root)
    except _Cycle as cycle:
        return f"(line {cycle.line}): an alias refers to a node that contains it"
    if total > _MAX_EXPANDED_NODES:
        return f": the aliases expand to more than {_MAX_EXPANDED_NODES:,} values"
    return None


class _Cycle(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


#: The userinfo of a URL quoted in an error (``redis://:pw@host`` in a validator's message):
#: greedy up to the last ``@`` of the word, as a password may hold ``/``, ``?`` or ``@``.
_USERINFO = re.compile(r"(?<=://)[^\s'\"]*@")


def _fail(message: str, cause: BaseException | None) -> FlextResult[GatewayConfig]:
    # A refused reload logs this and the admin API returns it: no password in it (the
    # validators quote the URLs they refuse, userinfo included).
    error = ConfigError(_USERINFO.sub("**********@", message))
    if cause is not None:
        error.__cause__ = cause
    return FlextResult.fail(error, code=ErrorCode.CONFIG_ERROR)


def _describe(err: Any, root: yaml.Node | None) -> str:
    loc: tuple[int | str, ...] = tuple(err["loc"])
    path = _path(loc)
    line = _line(root, loc)
    where = f"{path or '<root>'}" + (f" (line {line})" if line is not None else "")
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key"
    if err["type"] == "missing":
        return f"{where}: required key missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _line(root: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest node of ``loc`` present in the file (1-based)."""
    node = root
    best = None if node is None else node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    best = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            best = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return best
