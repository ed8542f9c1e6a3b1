"""``ClientConfig(timeout=30)`` type-checks, and ``config.timeout`` reads as a ``TimeoutConfig``.

The before-validator has always accepted a number (every phase) and None (no timeouts);
the field is declared for type checkers through a descriptor whose ``__set__`` takes that
shorthand and whose ``__get__`` gives a ``TimeoutConfig`` (PEP 681's descriptor-typed
fields). mypy checks snippets here, without and with the pydantic mypy plugin.
"""

from __future__ import annotations

import os
import re

import mypy.api
import pytest

from flext_api import ClientConfig, TimeoutConfig

_CONFIGS = {
    "plain": "[mypy]\npython_version = 3.11\nstrict = true\nfollow_imports = silent\n",
    "pydantic-plugin": (
        "[mypy]\npython_version = 3.11\nstrict = true\nfollow_imports = silent\n"
        "plugins = pydantic.mypy\n\n"
        "[pydantic-mypy]\ninit_typed = true\ninit_forbid_extra = true\n"
    ),
}

_SNIPPET = """\
from __future__ import annotations

from flext_api import ClientConfig, FlextApiConfig, TimeoutConfig


def good() -> list[ClientConfig]:
    configs = [
        ClientConfig(timeout=30),
        ClientConfig(timeout=2.5),
        ClientConfig(timeout=None),
        ClientConfig(timeout=TimeoutConfig(read=5.0)),
        ClientConfig(base_url="https://api.example", timeout=10, http2=True),
        ClientConfig(),
    ]
    FlextApiConfig(client=ClientConfig(timeout=30))
    return configs


def reads(config: ClientConfig) -> TimeoutConfig:
    read: float | None = config.timeout.read
    print(read)
    reveal_type(config.timeout)  # expect: note TimeoutConfig
    return config.timeout


def bad(config: ClientConfig) -> float:
    ClientConfig(timeout="30")  # expect: error arg-type
    ClientConfig(timeout=[1, 2])  # expect: error arg-type
    ClientConfig(timout=30)  # expect: error call-arg
    ClientConfig(pool=5)  # expect: error arg-type
    return config.timeout  # expect: error return-value
"""

_EXPECT = re.compile(r"#\s*expect:\s*(?P<kind>error|note)\s+(?P<what>[\w-]+)")
_REPORT = re.compile(r"^snippet\.py:(?P<line>\d+): (?P<kind>error|note): (?P<message>.*)$")


@pytest.fixture(scope="module", params=sorted(_CONFIGS))
def mypy_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, tuple[str, str]]:
    """mypy's messages on the snippet, by line: (kind, message)."""
    directory = tmp_path_factory.mktemp("config_typing")
    (directory / "mypy.ini").write_text(_CONFIGS[request.param], encoding="utf-8")
    (directory / "snippet.py").write_text(_SNIPPET, encoding="utf-8")
    stdout, stderr, _ = mypy.api.run(
        [
            "--config-file",
            str(directory / "mypy.ini"),
            "--cache-dir",
            # Shared by the mypy runs of a session with the same settings.
            str(tmp_path_factory.getbasetemp() / f"mypy-cache-{request.param}"),
            "--no-error-summary",
            "--hide-error-context",
            "--show-error-codes",
            str(directory / "snippet.py"),
        ]
    )
    assert stderr == ""
    report: dict[int, tuple[str, str]] = {}
    for line in stdout.splitlines():
        match = _REPORT.match(line.replace(str(directory) + os.sep, ""))
        assert match is not None, f"unexpected mypy output: {line}"
        if match["kind"] == "note" and " defined " in match["message"]:
            continue  # where the called class is defined (shown or not, cache depending)
        assert int(match["line"]) not in report, line
        report[int(match["line"])] = (match["kind"], match["message"])
    return report


def test_shorthand_is_accepted_and_reads_as_timeout_config(
    mypy_report: dict[int, tuple[str, str]],
) -> None:
    """Only the marked lines get a message, each of the kind expected."""
    expected = {
        number: (match["kind"], match["what"])
        for number, text in enumerate(_SNIPPET.splitlines(), start=1)
        if (match := _EXPECT.search(text))
    }
    assert sorted(mypy_report) == sorted(expected), mypy_report
    for line, (kind, what) in expected.items():
        got_kind, message = mypy_report[line]
        assert got_kind == kind, message
        if kind == "error":
            assert message.endswith(f"[{what}]"), message
        else:
            assert message == 'Revealed type is "flext_api._config.TimeoutConfig"', message


def test_runtime_is_unchanged() -> None:
    """Pydantic still sees a ``TimeoutConfig`` field with its default; the shorthand works."""
    field = ClientConfig.model_fields["timeout"]
    assert field.annotation is TimeoutConfig
    assert field.default == TimeoutConfig()
    assert list(ClientConfig.model_fields)[:2] == ["base_url", "timeout"]
    assert ClientConfig(timeout=30).timeout == TimeoutConfig(connect=30, read=30, write=30, pool=30)
    assert ClientConfig(timeout=None).timeout == TimeoutConfig.of(None)
