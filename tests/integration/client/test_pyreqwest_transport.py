"""The transport contract on ``PyreqwestTransport``: the aiohttp transport's tests, run on it.

The fault, streaming and httpbin tests of this folder are taken in here and run with
every ``FlextApiClient`` built on the pyreqwest transport (``_on_pyreqwest``). The few
that are about aiohttp itself are left out, and replaced where the behaviour is the
transport's: see ``NOT_RUN_HERE``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
import trustme

from flext_api import (
    ClientConfig,
    ErrorCode,
    PoolConfig,
    TimeoutConfig,
)
from flext_api.client import FlextApiClient
from flext_api.client import _client as client_module
from flext_api.transports import AiohttpTransport, PyreqwestTransport
from tests.integration.client import test_faults, test_httpbin, test_streaming
from tests.servers.fault import FaultServer
from tests.servers.h2_server import H2Server

pytestmark = pytest.mark.integration

#: Contract tests of the aiohttp transport not run here, and why.
NOT_RUN_HERE = {
    "test_scheme_other_than_http_is_refused_by_the_transport": "builds an AiohttpTransport; "
    "the ftp-scheme row of test_transport_error_parity.py runs it on both transports",
    "test_keep_alive_reuses_one_connection": "reads stats()['pool']['idle'], which pyreqwest "
    "does not expose; replaced by test_keep_alive_reuses_one_connection_on_pyreqwest",
    "test_server_closing_after_each_answer_costs_a_connection_each": "reads the idle count "
    "(as above); the server-side count is checked in the replacement",
    "test_request_without_user_agent_sends_none": "reqwest adds its own User-Agent to a "
    "request without one (the client always sends its own)",
    "test_credentials_in_url_become_basic_auth": "reqwest does not turn URL credentials "
    "into Basic auth; put them in an auth plugin",
}

# Every other test of those modules is run here, as it is (new ones join by themselves).
for _module in (test_faults, test_httpbin, test_streaming):
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and _name not in NOT_RUN_HERE:
            globals()[_name] = _test


@pytest.fixture(autouse=True)
def _on_pyreqwest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client built without a transport gets the pyreqwest one."""
    pick = client_module._default_transport

    def pyreqwest_transport(cfg: ClientConfig, *args: Any) -> Any:
        transport = pick(cfg.model_copy(update={"transport": "pyreqwest"}), *args)
        assert isinstance(transport, PyreqwestTransport)
        return transport

    monkeypatch.setattr(client_module, "_default_transport", pyreqwest_transport)


async def test_keep_alive_reuses_one_connection_on_pyreqwest(fault: FaultServer) -> None:
    """Sequential requests share one pooled connection (the server counts one)."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        for _ in range(5):
            assert (await client.get("/status/200")).is_success
    assert fault.connections_opened == 1


async def test_connection_close_answers_are_not_pooled(fault: FaultServer) -> None:
    """``Connection: close`` answers succeed, each on a connection of its own."""
    async with FlextApiClient(
        fault.url, default_plugins=False, headers={"Connection": "close"}
    ) as client:
        results = [await client.get("/status/200") for _ in range(3)]
    assert [r.value.status_code for r in results] == [200, 200, 200]
    assert fault.connections_opened == 3


async def test_post_dropped_after_sending_is_protocol_error_not_retried(
    fault: FaultServer,
) -> None:
    """A POST whose connection drops after it went out is PROTOCOL_ERROR: sent once only."""
    async with FlextApiClient(fault.url) as client:
        result = await client.post("/drop", json={"n": 1})
    assert result.error_code is ErrorCode.PROTOCOL_ERROR
    assert fault.hits("/drop") == 1


async def test_reset_after_headers_is_protocol_error(fault: FaultServer) -> None:
    """A connection cut after the head, mid-body, is PROTOCOL_ERROR."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        result = await client.get("/drop-after-headers")
    assert result.error_code is ErrorCode.PROTOCOL_ERROR


async def test_untrusted_certificate_is_tls_error(h2_server: H2Server) -> None:
    """Without the test CA the server's certificate is refused with TLS_ERROR."""
    async with FlextApiClient(h2_server.url, default_plugins=False) as client:
        result = await client.get("/hello")
    assert result.error_code is ErrorCode.TLS_ERROR


async def test_ssl_context_ca_is_trusted(h2_server: H2Server) -> None:
    """The CA certificates of ``ssl_context`` are trusted; HTTP/1.1 unless asked for h2."""
    async with FlextApiClient(
        h2_server.url, default_plugins=False, ssl_context=h2_server.ssl_context()
    ) as client:
        result = await client.get("/hello")
    assert result.value.http_version == "HTTP/1.1"
    assert result.value.json()["http_version"] == "1.1"


async def test_verify_false_skips_certificate_checks(h2_server: H2Server) -> None:
    """``verify_ssl=False`` talks to a server whose CA is not trusted."""
    config = ClientConfig(verify_ssl=False)
    async with FlextApiClient(h2_server.url, config=config, default_plugins=False) as client:
        result = await client.get("/hello")
    assert result.value.status_code == 200


async def test_http2_is_negotiated_when_asked(h2_server: H2Server) -> None:
    """``http2=True`` speaks HTTP/2 over TLS, reported as ``HTTP/2``."""
    transport = PyreqwestTransport(ssl_context=h2_server.ssl_context(), http2=True)
    async with FlextApiClient(h2_server.url, transport=transport, default_plugins=False) as client:
        result = await client.get("/hello")
    assert result.value.http_version == "HTTP/2"
    assert result.value.json()["http_version"] == "2"


async def test_a_per_request_timeout_gets_its_own_client(fault: FaultServer) -> None:
    """A request with other connect/read timeouts is sent with them (its own pool)."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        slow = await client.get("/delay/1", timeout=0.2)
        fine = await client.get("/status/200")
        assert client.stats()["pool"]["clients"] == 2
    assert slow.error_code is ErrorCode.READ_TIMEOUT
    assert fine.is_success


async def test_too_many_timeout_profiles_is_config_error(fault: FaultServer) -> None:
    """Past ``max_timeout_profiles`` distinct timeouts a request fails CONFIG_ERROR."""
    transport = PyreqwestTransport(max_timeout_profiles=1)
    async with FlextApiClient(fault.url, transport=transport, default_plugins=False) as client:
        first = await client.get("/status/200")  # the transport's own timeouts
        second = await client.get("/status/200", timeout=2.0)
    assert first.is_success
    assert second.error_code is ErrorCode.CONFIG_ERROR


async def test_streamed_response_is_held_to_the_read_timeout_not_the_deadline(
    fault: FaultServer,
) -> None:
    """A stream read past the deadline still arrives whole (the deadline bounds the head)."""
    async with FlextApiClient(fault.url, default_plugins=False, timeout=None) as client:
        request = client.build_request("GET", "/slow-body?chunks=3&interval=0.2")
        request.deadline = client._clock.monotonic() + 0.3
        response = await client.transport.send(request, stream=True)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
    assert body == b"xxx"


async def test_pool_wait_cut_by_the_deadline_is_deadline_exceeded(fault: FaultServer) -> None:
    """Waiting for a slot past the deadline (shorter than the pool timeout): DEADLINE_EXCEEDED."""
    config = ClientConfig(pool=PoolConfig(max_connections=1, max_keepalive=1))
    async with FlextApiClient(fault.url, config=config, default_plugins=False) as client:
        busy = asyncio.create_task(client.get("/delay/0.5"))
        while client.stats()["pool"]["in_use"] == 0:  # noqa: ASYNC110 - a counter, polled
            await asyncio.sleep(0.01)
        waiting = await client.get("/status/200", timeout=TimeoutConfig(pool=5, total=0.1))
        assert (await busy).is_success
        assert client.stats()["pool"]["in_use"] == 0
    assert waiting.error_code is ErrorCode.DEADLINE_EXCEEDED


async def test_cancelled_request_gives_its_slot_back(fault: FaultServer) -> None:
    """Cancelling a request on the wire frees its slot; the next request goes through."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        task = asyncio.create_task(client.get("/delay/2"))
        while client.stats()["pool"]["in_use"] == 0:  # noqa: ASYNC110 - a counter, polled
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert client.stats()["pool"]["in_use"] == 0
        assert (await client.get("/status/200")).is_success


async def test_status_without_a_known_phrase_has_an_empty_reason(fault: FaultServer) -> None:
    """A status code with no standard phrase arrives with ``reason == ""``."""
    async with FlextApiClient(fault.url, default_plugins=False) as client:
        result = await client.get("/status/299")
    assert result.value.status_code == 299
    assert result.value.reason == ""


async def test_stream_without_any_timeout_reads_the_whole_body(fault: FaultServer) -> None:
    """With every timeout off a stream still arrives whole, chunk by chunk."""
    client = FlextApiClient(fault.url, default_plugins=False, timeout=None)
    async with client, client.stream("GET", "/stream", params={"chunks": 3, "size": 10}) as resp:
        chunks = [chunk async for chunk in resp.aiter_bytes()]
    assert b"".join(chunks) == b"a" * 10 + b"b" * 10 + b"c" * 10


async def test_client_certificate_is_presented_for_mutual_tls() -> None:
    """With ``identity_pem`` a server that requires a client certificate answers; without
    it the request fails as it does on the aiohttp transport."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.configure_trust(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    subjects: list[object] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            subjects.append(writer.get_extra_info("peercert")["subjectAltName"])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the handshake without a client certificate: refused, as intended
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server_context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    identity = ca.issue_cert("client.example").private_key_and_cert_chain_pem.bytes()
    try:
        with_cert = PyreqwestTransport(ssl_context=client_context, identity_pem=identity)
        async with FlextApiClient(transport=with_cert, default_plugins=False) as client:
            accepted = await client.get(url)
        refused = []
        for without in (
            PyreqwestTransport(ssl_context=client_context),
            AiohttpTransport(ssl_context=client_context),
        ):
            async with FlextApiClient(transport=without, default_plugins=False) as client:
                refused.append(await client.get(url))
    finally:
        server.close()
        await server.wait_closed()
    assert accepted.value.content == b"ok"
    assert subjects == [(("DNS", "client.example"),)]
    # TLS 1.3: the client learns of the refusal only when the server closes after the
    # handshake (PROTOCOL_ERROR), or from its alert (TLS_ERROR), whichever comes first,
    # on either transport.
    codes = {ErrorCode.PROTOCOL_ERROR, ErrorCode.TLS_ERROR}
    assert {r.error_code for r in refused} <= codes


def test_sync_client_runs_on_the_pyreqwest_transport(fault: FaultServer) -> None:
    """The blocking client works over the pyreqwest transport from several threads."""
    from concurrent.futures import ThreadPoolExecutor

    from flext_api.client import FlextApiSyncClient

    with FlextApiSyncClient(fault.url, default_plugins=False) as client:
        assert isinstance(client.async_client.transport, PyreqwestTransport)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda i: client.get(f"/echo?i={i}"), range(8)))
    assert [r.value.json()["query"]["i"] for r in results] == [[str(i)] for i in range(8)]
