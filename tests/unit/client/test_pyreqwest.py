"""PyreqwestTransport without a network: selection, refusals, and its error mapping."""

from __future__ import annotations

import ssl
import sys

import pytest
import trustme
from pyreqwest import exceptions as pe

from flext_api import ClientConfig, ErrorCode, FlextApiError, HttpRequest, PoolConfig, TimeoutConfig
from flext_api.client import FlextApiClient
from flext_api.testing import FakeClock
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


def test_tls_material_pyreqwest_refuses_is_config_error() -> None:
    """A client identity that does not parse fails at construction with CONFIG_ERROR."""
    with pytest.raises(FlextApiError, match="TLS settings") as caught:
        PyreqwestTransport(identity_pem=b"not a PEM")
    assert caught.value.code is ErrorCode.CONFIG_ERROR


def test_client_identity_is_accepted() -> None:
    """A PEM key and certificate chain is taken as the client identity."""
    identity = trustme.CA().issue_cert("client.example").private_key_and_cert_chain_pem
    transport = PyreqwestTransport(identity_pem=identity.bytes())
    assert transport.stats()["clients"] == 1


def _exc(cls: type[Exception], *causes: str) -> Exception:
    return cls("failed", {"causes": [{"message": c} for c in causes] or None})


SENT = ("error sending request", "client error (SendRequest)")
CONNECT = ("error sending request", "client error (Connect)")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (_exc(pe.ConnectError, *CONNECT, "tcp connect error", "refused"), ErrorCode.CONNECT_ERROR),
        (_exc(pe.ConnectError, *CONNECT, "dns error"), ErrorCode.DNS_ERROR),
        (_exc(pe.ConnectError, *CONNECT, "invalid peer certificate"), ErrorCode.TLS_ERROR),
        (_exc(pe.ConnectError, *SENT, "connection closed"), ErrorCode.PROTOCOL_ERROR),
        (_exc(pe.ConnectError), ErrorCode.PROTOCOL_ERROR),
        (_exc(pe.ReadError, "body error"), ErrorCode.PROTOCOL_ERROR),
        (_exc(pe.WriteError, "body error"), ErrorCode.PROTOCOL_ERROR),
        (_exc(pe.BodyDecodeError, "bad gzip"), ErrorCode.PROTOCOL_ERROR),
        (_exc(pe.ReadTimeoutError, "timed out"), ErrorCode.READ_TIMEOUT),
        (_exc(pe.WriteTimeoutError, "timed out"), ErrorCode.WRITE_TIMEOUT),
        (_exc(pe.BuilderError, "URL scheme is not allowed"), ErrorCode.INVALID_REQUEST),
        (_exc(pe.ClientClosedError), ErrorCode.INVALID_REQUEST),
        (_exc(pe.RequestError, "error sending request"), ErrorCode.PROTOCOL_ERROR),
        (ConnectionResetError(), ErrorCode.PROTOCOL_ERROR),
        (RuntimeError("a bug"), ErrorCode.UNEXPECTED_ERROR),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_pyreqwest_errors_map_to_codes(exc: Exception, code: ErrorCode) -> None:
    """Each pyreqwest error class (and its cause chain) maps to aiohttp's code."""
    transport = PyreqwestTransport()
    request = HttpRequest("POST", "http://127.0.0.1:1/x", timeout=TimeoutConfig())
    error = transport._translate(exc, request, TimeoutConfig(), waited=0.0, in_body=False)
    assert error.code is code
    assert error.__cause__ is exc


@pytest.mark.parametrize(
    ("connect", "read", "waited", "code"),
    [
        (5.0, 30.0, 5.01, ErrorCode.CONNECT_TIMEOUT),
        (5.0, 30.0, 30.01, ErrorCode.READ_TIMEOUT),
        (5.0, None, 5.01, ErrorCode.CONNECT_TIMEOUT),
        (None, 30.0, 30.01, ErrorCode.READ_TIMEOUT),
        (30.0, 5.0, 30.01, ErrorCode.READ_TIMEOUT),
    ],
)
def test_timeout_before_the_head_is_told_apart_by_when_it_fired(
    connect: float | None, read: float | None, waited: float, code: ErrorCode
) -> None:
    """Sooner than ``read`` after sending it was the connect timer; otherwise a read timeout."""
    timeout = TimeoutConfig(connect=connect, read=read)
    transport = PyreqwestTransport()
    request = HttpRequest("GET", "http://127.0.0.1:1/x", timeout=timeout)
    exc = _exc(pe.ConnectTimeoutError, "error sending request", "operation timed out")
    assert transport._translate(exc, request, timeout, waited=waited, in_body=False).code is code


def test_timeout_once_the_deadline_passed_is_deadline_exceeded() -> None:
    """Any timeout at or after the request's deadline is DEADLINE_EXCEEDED."""
    clock = FakeClock()
    transport = PyreqwestTransport(clock=clock)
    request = HttpRequest("GET", "http://127.0.0.1:1/x", deadline=clock.monotonic())
    exc = _exc(pe.ReadTimeoutError, "timed out")
    error = transport._translate(exc, request, TimeoutConfig(), waited=1.0, in_body=True)
    assert error.code is ErrorCode.DEADLINE_EXCEEDED


async def test_send_after_close_is_invalid_request() -> None:
    """A closed transport refuses to send with INVALID_REQUEST."""
    transport = PyreqwestTransport()
    await transport.aclose()
    with pytest.raises(FlextApiError, match="closed") as caught:
        await transport.send(HttpRequest("GET", "http://127.0.0.1:1/x"))
    assert caught.value.code is ErrorCode.INVALID_REQUEST


async def test_deadline_passed_before_sending_is_deadline_exceeded() -> None:
    """A request whose deadline is already past is not sent: DEADLINE_EXCEEDED."""
    clock = FakeClock()
    transport = PyreqwestTransport(clock=clock)
    request = HttpRequest("GET", "http://127.0.0.1:1/x", deadline=clock.monotonic() - 1)
    with pytest.raises(FlextApiError) as caught:
        await transport.send(request)
    assert caught.value.code is ErrorCode.DEADLINE_EXCEEDED
    assert transport.stats()["in_use"] == 0
    await transport.aclose()


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyreqwest installed, selecting the transport raises an ImportError naming
    the extra."""
    import flext_api.transports as transports

    monkeypatch.delitem(vars(transports), "PyreqwestTransport", raising=False)
    monkeypatch.delitem(sys.modules, "flext_api.transports._pyreqwest", raising=False)
    monkeypatch.setitem(sys.modules, "pyreqwest", None)
    with pytest.raises(
        ImportError, match=r"'pyreqwest' extra: pip install 'flext-api\[pyreqwest\]'"
    ):
        FlextApiClient(config=ClientConfig(transport="pyreqwest"))


def test_context_tls_versions_are_carried_over() -> None:
    """The context's TLS 1.2/1.3 bounds reach pyreqwest; a cap below TLS 1.2 is refused."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    assert PyreqwestTransport(ssl_context=context)._tls_versions == ("TLSv1.3", None)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert PyreqwestTransport(ssl_context=context)._tls_versions == (None, "TLSv1.2")
    with pytest.warns(DeprecationWarning, match="TLSv1_1"):  # Python deprecates it too
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(FlextApiError, match=r"TLS 1\.2 and 1\.3 only") as caught:
        PyreqwestTransport(ssl_context=context)
    assert caught.value.code is ErrorCode.CONFIG_ERROR


def test_context_wins_over_verify() -> None:
    """A verifying ssl_context keeps certificate checks on even with ``verify=False``."""
    transport = PyreqwestTransport(ssl_context=ssl.create_default_context(), verify=False)
    assert transport._verify is True
