"""Logs of hostile answers from the fault server: URLs in headers, bodies closed unread."""

from __future__ import annotations

import asyncio

import pytest

from flext_api import ClientConfig, ErrorCode
from flext_api.client import FlextApiClient
from flext_api.client.observability import LoggingPlugin
from tests.servers.fault import FaultServer
from tests.servers.http1 import Request, ResponseWriter
from tests.unit.observability.logcapture import LogCapture

pytestmark = pytest.mark.integration

PRESIGNED = (
    "https://bucket.test/report.pdf?X-Amz-Credential=cred-Zq8v-0001"
    "&X-Amz-Signature=sig-Zq8v-0002&X-Amz-Security-Token=st-Zq8v-0003&X-Amz-Expires=60"
)


async def test_a_redirect_to_a_presigned_url_logs_no_signature(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """The Location of an unfollowed redirect and the Referer sent are logged with
    their query secrets masked, like the request's own URL."""

    async def presign(req: Request, w: ResponseWriter) -> None:
        await w.send(302, headers=[("Location", PRESIGNED)])

    route = fault.add_route(r"/obs-hostile-presign", presign)
    try:
        async with FlextApiClient(
            fault.url, plugins=[LoggingPlugin(log_headers=True)], default_plugins=False
        ) as client:
            result = await client.get(
                "/obs-hostile-presign",
                headers={"Referer": "https://app.test/cb?code=c1&access_token=at-Zq8v-0004"},
                extensions={"follow_redirects": False},
            )
    finally:
        fault.remove_route(route)
    assert result.value.headers["location"] == PRESIGNED  # the caller gets it whole
    assert fault.requests_to("/obs-hostile-presign")[0].headers["referer"].endswith("0004")
    (attempt,) = json_logs.events("http.client.attempt")
    assert "Zq8v" not in json_logs.text
    assert attempt["response_headers"]["location"] == (
        "https://bucket.test/report.pdf?X-Amz-Credential=[REDACTED]"
        "&X-Amz-Signature=[REDACTED]&X-Amz-Security-Token=[REDACTED]&X-Amz-Expires=60"
    )
    assert attempt["request_headers"]["referer"] == (
        "https://app.test/cb?code=c1&access_token=[REDACTED]"
    )


async def _trickle_redirect(req: Request, w: ResponseWriter) -> None:
    # A redirect whose body is still coming when the client gives up on the chain: the
    # client closes the stream unread (the body cannot be whole before that).
    await w.send_head(302, [("Location", req.path), ("Content-Length", "1000")])
    for _ in range(1000):
        await w.write(b"x")
        await asyncio.sleep(0.05)
    w.finish()


async def test_log_bodies_never_changes_a_streamed_calls_outcome(
    fault: FaultServer, json_logs: LogCapture
) -> None:
    """A streamed redirect closed unread (TOO_MANY_REDIRECTS) is logged as <closed>;
    log_bodies read it and turned the call into an INVALID_REQUEST."""
    route = fault.add_route(r"/obs-hostile-trickle", _trickle_redirect)
    try:
        async with FlextApiClient(
            fault.url,
            config=ClientConfig(max_redirects=1),
            plugins=[LoggingPlugin(log_bodies=True)],
            default_plugins=False,
        ) as client:
            result = await client.get("/obs-hostile-trickle", extensions={"stream": True})
    finally:
        fault.remove_route(route)
    assert result.error_code is ErrorCode.TOO_MANY_REDIRECTS
    (attempt,) = json_logs.events("http.client.attempt")
    assert attempt["error_code"] == "TOO_MANY_REDIRECTS"
    assert attempt["status"] == 302
    assert attempt["response_body"] == "<closed>"
    (outcome,) = json_logs.events("http.client.request")
    assert outcome["error_code"] == "TOO_MANY_REDIRECTS"
