"""Logs of failing, retried calls to the fault server: one JSON line each, no secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import ErrorCode, RetryConfig
from flext_api.client import FlextApiClient
from flext_api.client.auth import BearerAuth, OAuth2ClientCredentials
from flext_api.client.observability import LoggingPlugin
from flext_api.client.plugins import RetryPlugin
from flext_api.testing import FakeClock
from tests.servers.fault import FaultServer
from tests.servers.fault_routes_auth import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
from tests.unit.observability.logcapture import LogCapture

pytestmark = pytest.mark.integration

SECRETS = {
    "bearer": "bearer-secret-0001",
    "header": "header-secret-0002",
    "cookie": "cookie-secret-0003",
    "query": "query-secret-0004",
    "custom_param": "param-secret-0005",
}


def _client(fault: FaultServer, auth: object, **log_options: object) -> FlextApiClient:
    log = LoggingPlugin(log_headers=True, log_bodies=True, redact_params=["sig"], **log_options)  # type: ignore[arg-type]
    retry = RetryPlugin(RetryConfig(max_retries=2, budget_ratio=None), clock=FakeClock())
    return FlextApiClient(fault.url, plugins=[log, retry], auth=auth, default_plugins=False)  # type: ignore[arg-type]


async def test_failing_retried_call_logs_no_secret(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """Three 503 attempts with secrets in every place: none reaches a log line."""
    async with _client(fault, BearerAuth(SECRETS["bearer"])) as client:
        result = await client.get(
            "/status/503",
            params={"access_token": SECRETS["query"], "sig": SECRETS["custom_param"], "page": 1},
            headers={"X-API-Key": SECRETS["header"], "Cookie": f"sid={SECRETS['cookie']}"},
        )
    assert result.error_code is ErrorCode.RETRIES_EXHAUSTED
    assert fault.hits("/status/503") == 3
    assert fault.requests_to("/status/503")[0].headers["authorization"] == (
        f"Bearer {SECRETS['bearer']}"
    )
    records = json_logs.records  # every line parses as exactly one JSON record
    assert len(json_logs.events("http.client.attempt")) == 3
    assert len(json_logs.events("http.client.retry")) == 2
    assert len(json_logs.events("http.client.request")) == 1
    assert len(records) == len(json_logs.text.splitlines())
    for secret in SECRETS.values():
        assert secret not in json_logs.text


async def test_oauth2_secret_and_token_absent_from_logs(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """Token request, issued token and client secret never appear in the records."""
    auth = OAuth2ClientCredentials(
        f"{fault.url}/oauth/tlog/token", OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET
    )
    async with _client(fault, auth) as client:
        assert (await client.get("/oauth/tlog/protected")).is_success
        assert (await client.post("/oauth/tlog/revoke")).is_success
        assert (await client.get("/oauth/tlog/protected")).is_success
    assert OAUTH_CLIENT_SECRET not in json_logs.text
    assert "at-tlog-" not in json_logs.text  # the access tokens
    assert json_logs.events("oauth2.token_rejected")


async def test_encoded_crlf_in_url_stays_encoded_on_one_line(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """%0D%0A in path and query is logged as sent, never decoded into a line break."""
    async with _client(fault, None) as client:
        await client.get("/status/503/%0D%0Aforged?x=%0D%0Ainjected:%201")
    lines = json_logs.text.splitlines()
    assert len(lines) == len(json_logs.records) == 2  # one attempt (404, no retry), one outcome
    for record in json_logs.records:
        assert record["url"].endswith("/status/503/%0D%0Aforged?x=%0D%0Ainjected:%201")


async def test_invalid_request_from_the_pipeline_is_one_line(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """A streamed body redirected with 307 cannot be replayed: INVALID_REQUEST, one line each."""

    async def body() -> AsyncIterator[bytes]:
        yield b"data"

    async with _client(fault, None) as client:
        result = await client.post(
            "/redirect-to?url=/echo&status=307&note=%0D%0Aforged", content=body()
        )
    assert result.error_code is ErrorCode.INVALID_REQUEST
    (outcome,) = json_logs.events("http.client.request")
    assert outcome["error_code"] == "INVALID_REQUEST"
    assert outcome["level"] == "warning"
    assert outcome["url"].endswith("&note=%0D%0Aforged")
    assert len(json_logs.text.splitlines()) == len(json_logs.records)


async def test_client_refuses_raw_crlf_before_the_pipeline(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """A raw CR/LF in a URL is INVALID_REQUEST at build time: nothing is sent or logged."""
    async with _client(fault, None) as client:
        result = await client.get("/echo\r\nX-Injected: 1")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert fault.hits("/echo") == 0
    assert json_logs.records == []
