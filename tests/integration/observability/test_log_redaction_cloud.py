"""Cloud credentials, JSON secrets under any spelling and huge URLs, through the real
log paths: the client's LoggingPlugin against an aiohttp server on 127.0.0.1, and the
server's access log from uvicorn on 127.0.0.1."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import orjson
import pytest
from aiohttp import web
from fastapi import FastAPI

from flext_api import ServerConfig
from flext_api._server_config import AccessLogConfig
from flext_api.client import FlextApiClient
from flext_api.client.observability import LoggingPlugin
from flext_api.server import create_fastapi_app, make_json_logger
from tests.server.live import LiveServer, live, wait_for_records
from tests.unit.observability.logcapture import LogCapture

__all__ = ["live"]

pytestmark = pytest.mark.integration

#: flext_api._redact.MAX_LOGGED_URL, the documented bound (written out: it is the spec).
MAX_LOGGED_URL = 8192

STS_TOKEN = "FwoGZXIvYXdzEXAMPLE-sts-session-token"
GOOG_KEY = "AIzaSyEXAMPLE-google-api-key"
# The parameters of an S3 SigV4, an S3 SigV2, a GCS V4 and an Azure SAS presigned URL.
PRESIGNED = {
    "X-Amz-Credential": "AKIAEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request",
    "X-Amz-Signature": "amz-signature-0001",
    "X-Amz-Security-Token": "amz-session-token-0002",
    "AWSAccessKeyId": "AKIAEXAMPLEKEYID0003",
    "Signature": "sigv2-signature-0004",
    "X-Goog-Credential": "goog-credential-0005",
    "X-Goog-Signature": "goog-signature-0006",
    "sig": "azure-sas-signature-0007",
}
PRESIGNED_QUERY = "&".join(f"{k}={v}" for k, v in PRESIGNED.items()) + "&X-Amz-Expires=300"
# Secret JSON members as APIs spell them: not one is in the exact-name list.
JSON_SECRETS = {
    "Password": "json-secret-0101",
    "PASSWORD": "json-secret-0102",
    "api-key": "json-secret-0103",
    "accessToken": "json-secret-0104",
    "Client-Secret": "json-secret-0105",
}


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    """Answers with a presigned ``Content-Location`` and a JSON body of secrets."""

    async def handle(request: web.Request) -> web.Response:
        if request.path.startswith("/missing"):
            return web.Response(status=404)
        return web.Response(
            body=orjson.dumps(
                {**JSON_SECRETS, "user": "ann", "nested": {"refreshToken": "json-secret-0106"}}
            ),
            content_type="application/json",
            headers={
                "Content-Location": f"https://bucket.storage.test/o?{PRESIGNED_QUERY}",
                "X-Goog-Api-Key": GOOG_KEY,
            },
        )

    # Past aiohttp's 8190-byte default, so a 100 kB request line is served.
    app = web.Application(handler_args={"max_line_size": 1 << 18})
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def _client(url: str) -> FlextApiClient:
    plugin = LoggingPlugin(log_headers=True, log_bodies=True, max_body=4096)
    return FlextApiClient(url, plugins=[plugin], default_plugins=False)


async def test_client_log_hides_cloud_headers_and_presigned_parameters(
    upstream: str, json_logs: LogCapture
) -> None:
    """X-Amz-Security-Token, X-Goog-Api-Key and every presigned-URL signature parameter
    (AWS, GCS, Azure; any case) are masked in the client's records."""
    async with _client(upstream) as client:
        result = await client.get(
            f"/bucket/object?{PRESIGNED_QUERY.replace('sig=', 'SIG=')}",
            headers={"X-Amz-Security-Token": STS_TOKEN, "x-goog-api-key": GOOG_KEY},
        )
    assert result.is_success, result.error
    [attempt] = json_logs.events("http.client.attempt")
    assert attempt["request_headers"]["x-amz-security-token"] == "[REDACTED]"
    assert attempt["request_headers"]["x-goog-api-key"] == "[REDACTED]"
    assert attempt["response_headers"]["x-goog-api-key"] == "[REDACTED]"
    assert "X-Goog-Signature=[REDACTED]" in attempt["url"]
    assert "X-Amz-Expires=300" in attempt["url"]
    for secret in (STS_TOKEN, GOOG_KEY, *PRESIGNED.values()):
        assert secret not in json_logs.text, secret


async def test_client_log_masks_json_keys_in_any_spelling(
    upstream: str, json_logs: LogCapture
) -> None:
    """JSON keys are matched ignoring case, '-' and '_' (accessToken is access_token), at
    any depth, in the request body and the response body."""
    async with _client(upstream) as client:
        sent = {"items": [{"Api_Key": "json-secret-0201"}], "X-Amz-Security-Token": STS_TOKEN}
        result = await client.post("/login", json={**JSON_SECRETS, **sent, "user": "ann"})
    assert result.is_success, result.error
    [attempt] = json_logs.events("http.client.attempt")
    request_body = orjson.loads(attempt["request_body"])
    response_body = orjson.loads(attempt["response_body"])
    assert request_body["user"] == response_body["user"] == "ann"
    assert request_body["items"] == [{"Api_Key": "[REDACTED]"}]
    assert response_body["nested"] == {"refreshToken": "[REDACTED]"}
    assert {response_body[k] for k in JSON_SECRETS} == {"[REDACTED]"}
    assert "json-secret" not in json_logs.text
    assert STS_TOKEN not in json_logs.text


async def test_client_log_cuts_a_huge_url_after_redacting_it(
    upstream: str, json_logs: LogCapture
) -> None:
    """A 100 kB URL is logged cut to MAX_LOGGED_URL characters with a count of the rest;
    a token the cut falls in is masked whole, never shown in part."""
    prefix = f"{upstream}/"
    # The cut falls inside the token's value: with the cut first, its start would show.
    path = "p" * (MAX_LOGGED_URL - len(prefix) - len("?access_token=") - 3)
    query = f"?access_token=TOKENSECRET{'T' * 100}&pad={'q' * 100_000}"
    async with _client(upstream) as client:
        result = await client.get(f"/{path}{query}")
    assert result.is_success, result.error
    for record in json_logs.records:
        url = record["url"]
        head, marker = url[:MAX_LOGGED_URL], url[MAX_LOGGED_URL:]
        assert re.fullmatch(r"\.\.\.\[\d+ more\]", marker), marker
        full = f"{prefix}{path}?access_token=[REDACTED]&pad={'q' * 100_000}"
        assert head == full[:MAX_LOGGED_URL]
        assert marker == f"...[{len(full) - MAX_LOGGED_URL} more]"
        assert "TOK" not in url


async def test_client_log_cuts_an_error_naming_a_huge_url(
    upstream: str, json_logs: LogCapture
) -> None:
    """The ``error`` of a failed call names its URL (a 100 kB path): cut like ``url``."""
    async with _client(upstream) as client:
        result = await client.get(f"/missing/{'p' * 100_000}?access_token=TOKENSECRET")
    assert result.is_failure and result.error is not None
    assert len(result.error) > 100_000  # the result keeps the whole message
    errors = [r["error"] for r in json_logs.records if "error" in r]
    assert errors
    for error in errors:
        assert error.startswith("HTTP 404")
        assert re.fullmatch(r"\.\.\.\[\d+ more\]", error[MAX_LOGGED_URL:]), error[-40:]
        assert "TOKENSECRET" not in error


# -- the server's access log ------------------------------------------------------------------


@pytest.fixture
def served(live: Callable[[FastAPI], LiveServer]) -> tuple[LiveServer, io.StringIO]:
    """A factory app on uvicorn, logging headers into a captured stream."""
    stream = io.StringIO()
    config = ServerConfig(access_log=AccessLogConfig(log_headers=True))
    return live(create_fastapi_app(config, logger=make_json_logger(stream))), stream


def _access_records(stream: io.StringIO, count: int) -> list[dict[str, Any]]:
    records = [r for r in wait_for_records(stream, count) if r.get("event") == "request"]
    assert len(records) == count, records
    return records


async def test_access_log_hides_cloud_headers_and_presigned_parameters(
    served: tuple[LiveServer, io.StringIO],
) -> None:
    """The access log masks X-Amz-Security-Token, X-Goog-Api-Key and presigned-URL
    signatures, in any case."""
    server, stream = served
    async with httpx2.AsyncClient() as client:
        await client.get(
            f"{server.url}/health?{PRESIGNED_QUERY.replace('X-Goog', 'x-goog')}",
            headers={"X-Amz-Security-Token": STS_TOKEN, "X-Goog-Api-Key": GOOG_KEY},
        )
    [record] = _access_records(stream, 1)
    assert record["headers"]["x-amz-security-token"] == "[REDACTED]"
    assert record["headers"]["x-goog-api-key"] == "[REDACTED]"
    assert "x-goog-Signature=[REDACTED]" in record["query"]
    assert record["query"].endswith("&X-Amz-Expires=300")
    for secret in (STS_TOKEN, GOOG_KEY, *PRESIGNED.values()):
        assert secret not in stream.getvalue(), secret


async def test_access_log_cuts_a_huge_path_and_query(
    served: tuple[LiveServer, io.StringIO],
) -> None:
    """A path or a query past MAX_LOGGED_URL characters is logged cut, with a count of
    what went; a secret the cut falls in is masked whole."""
    server, stream = served
    path = "/" + "p" * 12_000
    # 'token=' ends just before the cut: the cut falls inside its value.
    query = f"{'a=' + 'b' * (MAX_LOGGED_URL - 10)}&token=SECRETVALUE{'S' * 3000}"
    async with httpx2.AsyncClient() as client:
        await client.get(f"{server.url}{path}")
        await client.get(f"{server.url}/health?{query}")
    first, second = _access_records(stream, 2)
    assert first["path"] == f"{path[:MAX_LOGGED_URL]}...[{len(path) - MAX_LOGGED_URL} more]"
    redacted = f"{'a=' + 'b' * (MAX_LOGGED_URL - 10)}&token=[REDACTED]"
    assert second["query"] == (
        f"{redacted[:MAX_LOGGED_URL]}...[{len(redacted) - MAX_LOGGED_URL} more]"
    )
    assert "SECRET" not in stream.getvalue()
