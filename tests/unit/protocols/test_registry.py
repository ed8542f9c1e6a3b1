"""``ProtocolRegistry``: the product's original examples and the registry's rules."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flext_api import ErrorCode, FlextApiClient, FlextApiError, FlextResult, HttpRequest
from flext_api.protocols import (
    BaseProtocol,
    EventSource,
    FlextWebProtocol,
    GraphQLClient,
    GraphQLProtocol,
    GraphQLRequest,
    ProtocolRegistry,
    SSEProtocol,
    SSERequest,
    WebSocketConnection,
    WebSocketProtocol,
    WebSocketRequest,
)

LOCAL = "http://127.0.0.1:9"


class CustomClient:
    def __init__(self, config: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.config = config if config is not None else kwargs


def test_seed_registry_snippet_runs() -> None:
    """The seed's registry example runs as written and gives a FlextApiClient."""
    registry = ProtocolRegistry()
    registry.register("http", FlextWebProtocol)
    registry.register("graphql", GraphQLProtocol)
    registry.register("websocket", WebSocketProtocol)

    http_protocol = registry.get_protocol("http")
    client = http_protocol.create_client({"base_url": LOCAL})

    class CustomProtocol:
        def create_client(self, config: dict[str, Any]) -> CustomClient:
            return CustomClient(config)

    registry.register("custom", CustomProtocol)
    assert isinstance(client, FlextApiClient) and client.base_url == LOCAL
    assert isinstance(registry.get_protocol("custom").create_client({"a": 1}), CustomClient)


def test_seed_base_protocol_subclass_runs() -> None:
    """The seed's FlextWebProtocol-style subclass of BaseProtocol registers and works."""

    class MyWebProtocol(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> FlextApiClient:
            return FlextApiClient(**config)

        async def execute_request(self, request: HttpRequest) -> FlextResult[Any]:
            return FlextResult.ok(request.url)

    registry = ProtocolRegistry()
    registry.register("web", MyWebProtocol)
    assert registry.get_protocol("web").create_client({"base_url": LOCAL}).base_url == LOCAL


async def test_seed_custom_protocol_executes() -> None:
    """A custom BaseProtocol runs requests through registry.execute."""

    class CustomProtocol(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> object:
            return CustomClient(**config)

        async def execute_request(self, request: object) -> FlextResult[object]:
            return FlextResult.ok({"echo": request})

    registry = ProtocolRegistry()
    registry.register("custom", CustomProtocol)
    assert (await registry.execute("custom", 42)).value == {"echo": 42}


def test_builtins_are_registered() -> None:
    """A new registry knows http, graphql, websocket and sse."""
    assert ProtocolRegistry().names() == ["graphql", "http", "sse", "websocket"]


def test_empty_registry_has_no_builtins() -> None:
    """``builtins=False`` starts empty."""
    assert ProtocolRegistry(builtins=False).names() == []


def test_unknown_protocol_raises_config_error_naming_known() -> None:
    """get_protocol of an unknown name raises ConfigError listing the registered names."""
    with pytest.raises(FlextApiError) as info:
        ProtocolRegistry().get_protocol("gopher")
    assert info.value.code is ErrorCode.CONFIG_ERROR and "graphql, http" in info.value.message


def test_resolve_unknown_is_failed_result() -> None:
    """resolve of an unknown name is a CONFIG_ERROR result."""
    assert ProtocolRegistry().resolve("gopher").error_code is ErrorCode.CONFIG_ERROR


def test_register_rejects_non_protocol() -> None:
    """An object without create_client is refused with CONFIG_ERROR."""
    registry = ProtocolRegistry()
    result = registry.register("bad", object())
    assert result.error_code is ErrorCode.CONFIG_ERROR and "bad" not in registry


def test_register_rejects_empty_name() -> None:
    """An empty name is refused with CONFIG_ERROR."""
    assert ProtocolRegistry().register("", FlextWebProtocol).error_code is ErrorCode.CONFIG_ERROR


def test_unregister_removes() -> None:
    """unregister removes a name; a second call is a CONFIG_ERROR."""
    registry = ProtocolRegistry()
    assert registry.unregister("sse").is_success
    assert registry.unregister("sse").error_code is ErrorCode.CONFIG_ERROR


def test_registered_class_is_made_once() -> None:
    """A class is instantiated on first use and the instance reused."""
    registry = ProtocolRegistry()
    assert registry.get_protocol("http") is registry.get_protocol("http")


def test_failing_constructor_is_config_error() -> None:
    """A protocol class whose constructor raises gives CONFIG_ERROR."""

    class Broken:
        def __init__(self) -> None:
            raise RuntimeError("no")

        def create_client(self, config: dict[str, Any]) -> None:
            return None

    registry = ProtocolRegistry()
    registry.register("broken", Broken)
    assert registry.resolve("broken").error_code is ErrorCode.CONFIG_ERROR


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"base_url": LOCAL}, FlextApiClient),
        ({"protocol": "graphql", "base_url": LOCAL, "endpoint": "/gql"}, GraphQLClient),
        ({"protocol": "websocket", "base_url": LOCAL, "url": "/ws"}, WebSocketConnection),
        ({"protocol": "sse", "base_url": LOCAL, "url": "/events"}, EventSource),
    ],
)
def test_create_client_picks_protocol(config: dict[str, Any], kind: type) -> None:
    """registry.create_client makes the named protocol's client."""
    assert isinstance(ProtocolRegistry().create_client(config).value, kind)


@pytest.mark.parametrize("protocol", ["http", "graphql", "websocket", "sse"])
def test_unknown_config_key_is_config_error(protocol: str) -> None:
    """An unknown key in a client config is a CONFIG_ERROR naming it."""
    result = ProtocolRegistry().create_client({"protocol": protocol, "url": "/x", "colour": 1})
    assert result.error_code is ErrorCode.CONFIG_ERROR and "colour" in (result.error or "")


@pytest.mark.parametrize("protocol", ["websocket", "sse"])
def test_missing_url_is_config_error(protocol: str) -> None:
    """WebSocket and SSE client configs need a url."""
    result = ProtocolRegistry().create_client({"protocol": protocol})
    assert result.error_code is ErrorCode.CONFIG_ERROR


def test_create_client_needs_dict() -> None:
    """A config that is not a dict is a CONFIG_ERROR."""
    assert ProtocolRegistry().create_client([]).error_code is ErrorCode.CONFIG_ERROR  # type: ignore[arg-type]


def test_third_party_create_client_error_is_config_error() -> None:
    """A custom create_client that raises becomes a CONFIG_ERROR result."""

    class Raising:
        def create_client(self, config: dict[str, Any]) -> None:
            raise ValueError("bad config")

    registry = ProtocolRegistry()
    registry.register("raising", Raising())
    result = registry.create_client({"protocol": "raising"})
    assert result.error_code is ErrorCode.CONFIG_ERROR and "bad config" in (result.error or "")


async def test_execute_without_execute_request_is_config_error() -> None:
    """A protocol with only create_client cannot execute requests."""
    registry = ProtocolRegistry()
    registry.register("plain", type("Plain", (), {"create_client": lambda s, c: c}))
    assert (await registry.execute("plain", 1)).error_code is ErrorCode.CONFIG_ERROR


async def test_execute_non_result_is_plugin_error() -> None:
    """execute_request returning something else than a FlextResult is a PLUGIN_ERROR."""

    class Sloppy(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> None:
            return None

        async def execute_request(self, request: object) -> Any:
            return request

    registry = ProtocolRegistry()
    registry.register("sloppy", Sloppy)
    assert (await registry.execute("sloppy", 1)).error_code is ErrorCode.PLUGIN_ERROR


async def test_execute_raising_is_plugin_error() -> None:
    """execute_request raising becomes a PLUGIN_ERROR result."""

    class Raising(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> None:
            return None

        async def execute_request(self, request: object) -> FlextResult[Any]:
            raise RuntimeError("boom")

    registry = ProtocolRegistry()
    registry.register("raising", Raising)
    assert (await registry.execute("raising", 1)).error_code is ErrorCode.PLUGIN_ERROR


@pytest.mark.parametrize(
    ("protocol", "request_"),
    [
        (FlextWebProtocol, "GET /"),
        (GraphQLProtocol, "{ hello }"),
        (WebSocketProtocol, "hi"),
        (SSEProtocol, SSERequest("/e", max_events=0)),
    ],
)
async def test_builtin_rejects_wrong_request_type(protocol: type, request_: object) -> None:
    """A built-in protocol given the wrong request type fails with INVALID_REQUEST."""
    proto = protocol(base_url=LOCAL)
    try:
        result = await proto.execute_request(request_)
    finally:
        await proto.aclose()
    assert result.error_code is ErrorCode.INVALID_REQUEST


def test_request_types_have_defaults() -> None:
    """The request dataclasses default to the common case."""
    assert (GraphQLRequest("{ a }").kind, WebSocketRequest("/ws", "x").timeout) == ("query", 30.0)


@pytest.fixture
def advertised(tmp_path: Path) -> Iterator[None]:
    """An installed distribution advertising a protocol and a broken entry point."""
    (tmp_path / "acme_proto.py").write_text(
        textwrap.dedent(
            """
            class AcmeProtocol:
                def create_client(self, config):
                    return ("acme", config)

            NOT_A_PROTOCOL = 42
            """
        )
    )
    dist = tmp_path / "acme_proto-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-proto\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[flext_api.protocols]\nacme = acme_proto:AcmeProtocol\nghost = acme_missing:Nope\n"
        "plain = acme_proto:NOT_A_PROTOCOL\n"
        "[flext_api.protocols.good]\nacme = acme_proto:AcmeProtocol\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_proto", None)


def test_discover_registers_entry_points(advertised: None) -> None:
    """discover() registers advertised protocols and reports the broken ones."""
    registry = ProtocolRegistry()
    result = registry.discover()
    assert result.error_code is ErrorCode.PLUGIN_ERROR
    assert result.exception is not None
    assert result.exception.details["loaded"] == ["acme"]
    assert set(result.exception.details["failures"]) == {"ghost", "plain"}
    assert registry.get_protocol("acme").create_client({"k": 1}) == ("acme", {"k": 1})


def test_repr_lists_names() -> None:
    """The repr lists the registered names."""
    assert repr(ProtocolRegistry()) == "<ProtocolRegistry [graphql, http, sse, websocket]>"


def test_discover_clean_group_is_success(advertised: None) -> None:
    """A group whose entry points all load gives the loaded names."""
    assert ProtocolRegistry().discover("flext_api.protocols.good").value == ["acme"]


def test_create_client_of_unknown_protocol_is_config_error() -> None:
    """create_client with an unknown protocol name is CONFIG_ERROR."""
    result = ProtocolRegistry().create_client({"protocol": "gopher"})
    assert result.error_code is ErrorCode.CONFIG_ERROR


async def test_execute_unknown_protocol_is_config_error() -> None:
    """execute with an unknown protocol name is CONFIG_ERROR."""
    assert (await ProtocolRegistry().execute("gopher", 1)).error_code is ErrorCode.CONFIG_ERROR


async def test_execute_raising_flext_error_keeps_it() -> None:
    """A FlextApiError raised by execute_request is returned as it is."""

    class Strict(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> None:
            return None

        async def execute_request(self, request: object) -> FlextResult[Any]:
            raise FlextApiError.from_code(ErrorCode.RATE_LIMITED, "slow down")

    registry = ProtocolRegistry()
    registry.register("strict", Strict)
    assert (await registry.execute("strict", 1)).error_code is ErrorCode.RATE_LIMITED


def test_base_protocol_repr_and_default_aclose() -> None:
    """A protocol's repr names its class and registry name."""
    assert repr(FlextWebProtocol()) == "<FlextWebProtocol 'http'>"


async def test_default_aclose_does_nothing() -> None:
    """BaseProtocol.aclose is a no-op hook for protocols that open nothing."""

    class Nothing(BaseProtocol):
        def create_client(self, config: dict[str, Any]) -> None:
            return None

        async def execute_request(self, request: object) -> FlextResult[Any]:
            return FlextResult.ok(None)

    proto = Nothing()
    await proto.aclose()
    assert (await proto.execute_request(1)).is_success


@pytest.mark.parametrize("name", [" http", "sse ", "a\nb", "tab\there", "nul\0"])
def test_register_rejects_padded_or_control_character_name(name: str) -> None:
    """A name with surrounding spaces or a control character is refused with CONFIG_ERROR."""
    registry = ProtocolRegistry()
    assert registry.register(name, FlextWebProtocol).error_code is ErrorCode.CONFIG_ERROR
    assert name not in registry


@pytest.mark.parametrize("name", [["http"], {"a": 1}, None, 3])
def test_name_of_another_type_is_config_error(name: Any) -> None:
    """resolve, unregister and create_client given a non-str name (even an unhashable
    one) fail with CONFIG_ERROR instead of raising; `in` says False."""
    registry = ProtocolRegistry()
    assert registry.resolve(name).error_code is ErrorCode.CONFIG_ERROR
    assert registry.unregister(name).error_code is ErrorCode.CONFIG_ERROR
    assert registry.create_client({"protocol": name}).error_code is ErrorCode.CONFIG_ERROR
    assert (name in registry) is False


async def test_sse_request_with_non_int_max_events_is_invalid_request() -> None:
    """An SSERequest whose max_events is not an int is INVALID_REQUEST, not a TypeError."""
    proto = SSEProtocol(base_url=LOCAL)
    try:
        result = await proto.execute_request(SSERequest("/e", max_events="3"))  # type: ignore[arg-type]
    finally:
        await proto.aclose()
    assert result.error_code is ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), "5"])
async def test_sse_request_with_an_unusable_timeout_is_invalid(timeout: object) -> None:
    proto = SSEProtocol()
    result = await proto.execute_request(SSERequest("/e", timeout=timeout))  # type: ignore[arg-type]
    await proto.aclose()
    assert result.error_code is ErrorCode.INVALID_REQUEST
