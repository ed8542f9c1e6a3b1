"""Selecting the optional pyreqwest transport, and what it refuses at construction."""

from __future__ import annotations

import ssl

import pytest

from flext_api import ClientConfig, ErrorCode, FlextApiError, PoolConfig
from flext_api.client import FlextApiClient
from flext_api.transports import PyreqwestTransport


async def test_config_selects_the_pyreqwest_transport() -> None:
    """``ClientConfig(transport="pyreqwest")`` gives a client on PyreqwestTransport."""
    client = FlextApiClient("http://127.0.0.1:1", config=ClientConfig(transport="pyreqwest"))
    assert isinstance(client.transport, PyreqwestTransport)
    assert client.describe()[-1] == "transport:pyreqwest"
    await client.aclose()


def test_per_host_connection_cap_is_refused() -> None:
    """``max_connections_per_host`` below the pool size cannot be honoured: ConfigError."""
    with pytest.raises(FlextApiError, match="max_connections_per_host") as caught:
        PyreqwestTransport(PoolConfig(max_connections=50, max_connections_per_host=2))
    assert caught.value.code is ErrorCode.CONFIG_ERROR


def test_context_without_hostname_check_is_refused() -> None:
    """An ssl_context that verifies certificates but not host names: ConfigError."""
    context = ssl.create_default_context()
    context.check_hostname = False
    with pytest.raises(FlextApiError, match="host names") as caught:
        PyreqwestTransport(ssl_context=context)
    assert caught.value.code is ErrorCode.CONFIG_ERROR


def test_context_without_verification_turns_checks_off() -> None:
    """An ssl_context with CERT_NONE is taken as verify=False; repr shows the pool."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    transport = PyreqwestTransport(ssl_context=context)
    assert transport._verify is False
    assert repr(transport) == (
        "<PyreqwestTransport http2=False [Requests: 0 active, 0 queued | max 100]>"
    )
