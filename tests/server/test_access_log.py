"""Access log: one JSON record per request, redacted and escaped."""

from __future__ import annotations

import io
import logging

from flext_api import ServerConfig
from flext_api._server_config import AccessLogConfig
from flext_api.server import create_fastapi_app, make_json_logger
from tests.server.conftest import Build
from tests.server.helpers import PEER, records, serve


async def test_one_record_with_fields(build: Build, log_stream: io.StringIO) -> None:
    """A request produces exactly one record with method, route, status, duration..."""
    app = build()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    async with serve(app) as client:
        await client.get("/items/42", headers={"User-Agent": "probe/1", "X-Request-ID": "r1"})
    [record] = records(log_stream)
    assert {k: record[k] for k in ("method", "path", "route", "status", "request_id")} == {
        "method": "GET",
        "path": "/items/42",
        "route": "/items/{item_id}",
        "status": 200,
        "request_id": "r1",
    }
    assert (record["client"], record["user_agent"], record["level"]) == (PEER[0], "probe/1", "info")
    assert record["duration_ms"] >= 0
    assert "query" not in record and "headers" not in record


async def test_unmatched_route_is_null(build: Build, log_stream: io.StringIO) -> None:
    """A 404 logs the raw path and a null route."""
    async with serve(build()) as client:
        await client.get("/nowhere")
    [record] = records(log_stream)
    assert (record["route"], record["status"]) == (None, 404)


async def test_query_secrets_are_redacted(build: Build, log_stream: io.StringIO) -> None:
    """Default and configured sensitive query parameters are replaced."""
    app = build(ServerConfig(access_log=AccessLogConfig(redact_query_params=("session",))))
    async with serve(app) as client:
        await client.get("/health?page=2&access_token=abc&Password=x&session=s1")
    [record] = records(log_stream)
    assert record["query"] == (
        "page=2&access_token=[REDACTED]&Password=[REDACTED]&session=[REDACTED]"
    )


async def test_api_key_header_name_in_the_query_is_redacted(
    build: Build, log_stream: io.StringIO
) -> None:
    """?X-API-Key=... (the key header's own name, any case, percent-encoded or not) is
    ignored by auth and never logged."""
    async with serve(build()) as client:
        await client.get("/health?X-API-Key=live-1&x-api-key=live-2&X%2DApi%2DKey=live-3&p=1")
    [record] = records(log_stream)
    assert record["query"] == (
        "X-API-Key=[REDACTED]&x-api-key=[REDACTED]&X%2DApi%2DKey=[REDACTED]&p=1"
    )


async def test_headers_logged_redacted_when_enabled(build: Build, log_stream: io.StringIO) -> None:
    """log_headers records headers with credentials (and configured names) redacted."""
    config = ServerConfig(
        access_log=AccessLogConfig(log_headers=True, redact_headers=("X-Tenant",))
    )
    app = build(config)
    async with serve(app) as client:
        await client.get(
            "/health",
            headers={
                "Authorization": "Bearer secret-token",
                "Cookie": "sid=1",
                "X-API-Key": "k",
                "X-Tenant": "acme",
                "Accept": "text/plain",
            },
        )
    [record] = records(log_stream)
    headers = record["headers"]
    assert {headers[k] for k in ("authorization", "cookie", "x-api-key", "x-tenant")} == {
        "[REDACTED]"
    }
    assert headers["accept"] == "text/plain"
    assert "secret-token" not in log_stream.getvalue()


async def test_control_characters_are_escaped(build: Build, log_stream: io.StringIO) -> None:
    """CR/LF/ESC in path and User-Agent are escaped; the record stays one line."""
    async with serve(build()) as client:
        await client.get("/a%0d%0aFAKE", headers=[(b"user-agent", b"ua\x1b[31mred")])
    assert len(log_stream.getvalue().splitlines()) == 1
    [record] = records(log_stream)
    assert record["path"] == "/a\\x0d\\x0aFAKE"
    assert record["user_agent"] == "ua\\x1b[31mred"


async def test_server_errors_log_at_error_level(build: Build, log_stream: io.StringIO) -> None:
    """A crashed handler is logged with status 500 at error level."""
    app = build()

    @app.get("/boom")
    async def boom() -> None:
        raise ValueError("x")

    async with serve(app) as client:
        await client.get("/boom")
    [access] = records(log_stream, "request")
    assert (access["status"], access["level"]) == (500, "error")


async def test_skip_paths(build: Build, log_stream: io.StringIO) -> None:
    """Requests to skip_paths are not logged."""
    app = build(ServerConfig(access_log=AccessLogConfig(skip_paths=("/health",))))
    async with serve(app) as client:
        await client.get("/health")
        await client.get("/ready")
    assert [r["path"] for r in records(log_stream, "request")] == ["/ready"]


async def test_disabled_access_log_writes_nothing(build: Build, log_stream: io.StringIO) -> None:
    """With the access log off, a request writes no record."""
    async with serve(build(ServerConfig(access_log=AccessLogConfig(enabled=False)))) as client:
        await client.get("/health")
    assert records(log_stream, "request") == []


async def test_logger_level_above_info_drops_the_records(log_stream: io.StringIO) -> None:
    """A default JSON logger set to WARNING writes no record for a successful request."""
    app = create_fastapi_app(logger=make_json_logger(log_stream, level=logging.WARNING))
    async with serve(app) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert records(log_stream) == []
