"""A JSON body holding an integer past 64 bits is sent exactly, not refused."""

from __future__ import annotations

from flext_api import HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.transports import MockTransport


async def test_a_snowflake_id_past_64_bits_is_sent_as_written() -> None:
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse(200)

    async with FlextApiClient("http://api.test", transport=MockTransport(handler)) as client:
        result = await client.post("/items", json={"id": 2**70, "name": "é"})
    assert result.is_success, result.error
    (request,) = seen
    assert request.content == '{"id":1180591620717411303424,"name":"é"}'.encode()
    assert request.headers["content-type"] == "application/json"
