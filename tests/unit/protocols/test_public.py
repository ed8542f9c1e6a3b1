"""The names DESIGN.md pins for protocols exist where it says."""

from __future__ import annotations

import inspect
import subprocess
import sys

import flext_api.protocols
from flext_api import ErrorCode, FlextApiClient


def test_pinned_protocol_names_import() -> None:
    """ProtocolRegistry, BaseProtocol and GraphQLClient are exported by flext_api.protocols."""
    for name in ("ProtocolRegistry", "BaseProtocol", "GraphQLClient"):
        assert name in flext_api.protocols.__all__
        assert getattr(flext_api.protocols, name) is not None


def test_client_has_websocket_and_sse() -> None:
    """FlextApiClient.websocket(url) and .sse(method, url) take the pinned arguments."""
    websocket = list(inspect.signature(FlextApiClient.websocket).parameters)
    sse = list(inspect.signature(FlextApiClient.sse).parameters)
    assert (websocket[:2], sse[:3]) == (["self", "url"], ["self", "method", "url"])


def test_error_codes_exist() -> None:
    """GRAPHQL_ERROR and WEBSOCKET_CLOSED are error codes."""
    assert (ErrorCode.GRAPHQL_ERROR.value, ErrorCode.WEBSOCKET_CLOSED.value) == (
        "GRAPHQL_ERROR",
        "WEBSOCKET_CLOSED",
    )


def test_protocols_need_no_graphql_library() -> None:
    """Importing flext_api.protocols and flext_api.server loads neither strawberry nor gql."""
    code = (
        "import sys, flext_api.protocols, flext_api.server\n"
        "print(sorted(m for m in ('strawberry', 'gql', 'graphql') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
