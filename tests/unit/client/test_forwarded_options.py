"""The keywords ``batch``/``paginate``/``websocket``/``sse`` forward are typed, and stay true.

Each of those methods hands ``**options`` on unchanged to its target (``run_batch``,
``Paginator``, ``WebSocketConnection``, ``EventSource``) and types them with a
``TypedDict`` written next to that target. A TypedDict restates the target's signature,
so the first tests compare the two (keys, annotations, all optional) and fail the
moment one changes without the other. The last ones run mypy on snippets: a misspelled
or mistyped keyword is reported for every method, and correct calls pass.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import AsyncGenerator, Callable
from typing import Any, Unpack

import mypy.api
import pytest

from flext_api.client import (
    BatchOptions,
    FlextApiClient,
    FlextApiSyncClient,
    PaginateOptions,
    Paginator,
    RequestOptions,
    run_batch,
)
from flext_api.protocols import EventSource, SSEOptions, WebSocketConnection, WebSocketOptions

# Names the targets' annotations use under ``if TYPE_CHECKING:`` only.
_TYPE_ONLY_NAMES: dict[str, Any] = {
    "AsyncGenerator": AsyncGenerator,
    "FlextApiClient": FlextApiClient,
    "FlextApiSyncClient": FlextApiSyncClient,
    "os": os,
}


def _hints(obj: Any) -> dict[str, Any]:
    return typing.get_type_hints(obj, localns=_TYPE_ONLY_NAMES)


def _keyword_only(func: Callable[..., Any]) -> dict[str, Any]:
    """``func``'s keyword-only parameters and their resolved annotations."""
    hints = _hints(func)
    parameters = inspect.signature(func).parameters.values()
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            assert parameter.default is not inspect.Parameter.empty, (
                f"{func.__qualname__}: {parameter.name} is required, but a total=False "
                "TypedDict makes every key optional"
            )
    return {p.name: hints[p.name] for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _var_keyword(func: Callable[..., Any]) -> inspect.Parameter | None:
    return next(
        (
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind is inspect.Parameter.VAR_KEYWORD
        ),
        None,
    )


# (TypedDict, the target it stands for, what extends the target's own keywords)
_PAIRS: list[tuple[type[Any], Callable[..., Any], type[Any] | None]] = [
    (BatchOptions, run_batch, None),
    (PaginateOptions, Paginator.__init__, None),
    (WebSocketOptions, WebSocketConnection.__init__, None),
    # EventSource's ``**options`` go, unchanged but for headers and extensions, to
    # ``client.build_request``: they are the request keywords (see the last test).
    (SSEOptions, EventSource.__init__, RequestOptions),
]


@pytest.mark.parametrize(
    ("options", "target", "rest"), _PAIRS, ids=[entry[0].__qualname__ for entry in _PAIRS]
)
def test_typed_dict_matches_the_target_signature(
    options: type[Any], target: Callable[..., Any], rest: type[Any] | None
) -> None:
    """Same keys, same annotations: a keyword added, removed, renamed or retyped on either
    side fails here."""
    expected = _keyword_only(target)
    own = dict(options.__annotations__)
    if rest is None:
        assert _var_keyword(target) is None, f"{target.__qualname__} takes **kwargs"
    else:
        # The keys ``rest`` brings are its own, inherited unchanged (its aliases are
        # strings that only mypy resolves; what they mean is rest's business).
        assert _var_keyword(target) is not None
        for key, annotation in rest.__annotations__.items():
            assert own.pop(key) == annotation, key
    actual = typing.get_type_hints(
        types.SimpleNamespace(__annotations__=own),
        globalns=vars(sys.modules[options.__module__]),
        localns=_TYPE_ONLY_NAMES,
    )
    assert sorted(actual) == sorted(expected)
    wrong = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
    assert wrong == {}


@pytest.mark.parametrize("options", [entry[0] for entry in _PAIRS], ids=lambda v: v.__qualname__)
def test_every_key_is_optional(options: Any) -> None:
    """``total=False``: each keyword may be left out, as each parameter has a default."""
    assert options.__required_keys__ == frozenset()


def test_sse_request_keywords_are_the_request_options() -> None:
    """SSEOptions extends RequestOptions, the type of ``build_request``'s ``**options``."""
    assert RequestOptions.__annotations__.keys() <= SSEOptions.__annotations__.keys()
    assert _hints(FlextApiClient.build_request)["options"] == Unpack[RequestOptions]


@pytest.mark.parametrize(
    ("method", "options"),
    [
        (FlextApiClient.batch, "BatchOptions"),
        (FlextApiClient.paginate, "PaginateOptions"),
        (FlextApiClient.websocket, "WebSocketOptions"),
        (FlextApiClient.sse, "SSEOptions"),
        (FlextApiSyncClient.batch, "BatchOptions"),
        (FlextApiSyncClient.paginate, "PaginateOptions"),
    ],
    ids=lambda v: getattr(v, "__qualname__", v),
)
def test_methods_use_the_typed_dicts(method: Callable[..., Any], options: str) -> None:
    """Each forwarding method types ``**options`` with its target's TypedDict."""
    parameter = _var_keyword(method)
    assert parameter is not None
    assert parameter.annotation == f"Unpack[{options}]"


# -- what a user's type checker sees ----------------------------------------------------------

_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
strict = true
follow_imports = silent
"""

_HEADER = """\
from __future__ import annotations

from flext_api import FlextApiClient, FlextApiSyncClient
"""

# Each line ends with the code and the name mypy must report on it.
_BAD = """\
async def misspelled(client: FlextApiClient, sync: FlextApiSyncClient) -> None:
    client.batch([], concurency=50)  # expect: call-arg concurency
    client.paginate("/items", max_page=3)  # expect: call-arg max_page
    client.websocket("/ws", on_reconect=None)  # expect: call-arg on_reconect
    client.sse("GET", "/events", idle_timout=5.0)  # expect: call-arg idle_timout
    client.sse("GET", "/events", header={"A": "b"})  # expect: call-arg header
    sync.batch([], concurency=50)  # expect: call-arg concurency
    sync.paginate("/items", max_page=3)  # expect: call-arg max_page


async def mistyped(client: FlextApiClient, sync: FlextApiSyncClient) -> None:
    client.batch([], concurrency="50")  # expect: arg-type concurrency
    client.paginate("/items", max_pages="3")  # expect: arg-type max_pages
    client.websocket("/ws", settings={})  # expect: arg-type settings
    client.sse("GET", "/events", fail_on_http_error="no")  # expect: arg-type fail_on_http_error
    sync.batch([], ordered=1)  # expect: arg-type ordered
"""

_GOOD = """\
from flext_api.client import BatchOptions, PageNumber
from flext_api.protocols import WebSocketSettings


async def correct(client: FlextApiClient, sync: FlextApiSyncClient) -> None:
    items = [{"method": "GET", "url": "/a"}]
    async for result in client.batch(
        items, concurrency=5, ordered=True, max_pause=1.0, request_options={"timeout": 5}
    ):
        print(result.success)
    options: BatchOptions = {"concurrency": 10, "check_duplicates": False}
    async for result in client.batch(items, **options):
        print(result.request_id)
    async for page in client.paginate(
        "/items", strategy=PageNumber(), max_pages=3, items_path="data", headers={"A": "b"}
    ):
        print(page.items)
    async with client.websocket("/ws", settings=WebSocketSettings(), headers={"A": "b"}) as ws:
        print(ws.url)
    async for event in client.sse(
        "GET", "/events", idle_timeout=30.0, last_event_id="7", headers={"A": "b"}, timeout=5
    ):
        print(event.data)
    for result in sync.batch(items, concurrency=2, progress=print):
        print(result.success)
    for page in sync.paginate("/items", max_pages=1):
        print(page.number)
"""

_EXPECT = re.compile(r"#\s*expect:\s*(?P<code>[\w-]+)\s+(?P<name>\w+)")
_REPORT = re.compile(r"^(?P<file>\w+)\.py:(?P<line>\d+): error: (?P<message>.*)  \[(?P<code>.+)\]$")


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str, str]]]:
    """mypy's errors on the snippets, by module: (line, message, code)."""
    directory = tmp_path_factory.mktemp("forwarded_options")
    (directory / "mypy.ini").write_text(_MYPY_CONFIG, encoding="utf-8")
    (directory / "bad.py").write_text(_HEADER + "\n\n" + _BAD, encoding="utf-8")
    (directory / "good.py").write_text(_HEADER + _GOOD, encoding="utf-8")
    stdout, stderr, _ = mypy.api.run(
        [
            "--config-file",
            str(directory / "mypy.ini"),
            "--cache-dir",
            # Shared by the mypy runs of a session with the same settings.
            str(tmp_path_factory.getbasetemp() / "mypy-cache-plain"),
            "--no-error-summary",
            "--hide-error-context",
            "--show-error-codes",
            str(directory / "bad.py"),
            str(directory / "good.py"),
        ]
    )
    assert stderr == ""
    report: dict[str, list[tuple[int, str, str]]] = {"bad": [], "good": []}
    for line in stdout.splitlines():
        line = line.replace(str(directory) + os.sep, "")
        if ": note: " in line:  # where the called method is defined
            continue
        match = _REPORT.match(line)
        assert match is not None, f"unexpected mypy output: {line}"
        report[match["file"]].append((int(match["line"]), match["message"], match["code"]))
    return report


def test_mypy_reports_every_misspelled_or_mistyped_keyword(
    mypy_report: dict[str, list[tuple[int, str, str]]],
) -> None:
    """Every marked line has its error (naming the keyword), and nothing else is reported."""
    offset = (_HEADER + "\n\n").count("\n")
    expected = {
        offset + number: (match["code"], match["name"])
        for number, text in enumerate(_BAD.splitlines(), start=1)
        if (match := _EXPECT.search(text))
    }
    assert len(expected) == 12
    seen = {line: (code, message) for line, message, code in mypy_report["bad"]}
    assert sorted(seen) == sorted(expected), textwrap.indent(
        "\n".join(f"{line}: {message}" for line, message, _ in mypy_report["bad"]), "  "
    )
    for line, (code, name) in expected.items():
        got_code, message = seen[line]
        assert got_code == code, message
        assert f'"{name}"' in message, message


def test_mypy_accepts_correct_calls(mypy_report: dict[str, list[tuple[int, str, str]]]) -> None:
    """The documented keywords of each method, and a BatchOptions spread, type-check."""
    assert mypy_report["good"] == []
