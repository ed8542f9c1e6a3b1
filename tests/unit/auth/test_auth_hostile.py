"""Auth plugins against hostile settings and token endpoints (MockTransport, FakeClock)."""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import AsyncIterator
from urllib.parse import quote_plus

import orjson
import pytest

from flext_api import ErrorCode, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport
from tests.unit.observability.logcapture import LogCapture

SECRET = "s3cr/et+Zq8v="
TOKEN_URL = "http://idp.test/token"


class Idp:
    """A token endpoint issuing ``token-n``; ``gate`` holds requests, ``down`` refuses."""

    def __init__(self) -> None:
        self.requests = 0
        self.current: str | None = None
        self.down = False
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests += 1
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            return HttpResponse(503, content=b'{"error":"temporarily_unavailable"}')
        self.current = f"token-{self.requests}"
        body = {"access_token": self.current, "token_type": "Bearer", "expires_in": 3600}
        return HttpResponse(200, content=orjson.dumps(body))


class Api:
    """A resource that answers 401 unless it gets the IdP's current token."""

    def __init__(self, idp: Idp) -> None:
        self.idp = idp
        self.tokens: list[str | None] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        presented = request.headers.get("authorization")
        self.tokens.append(presented)
        ok = self.idp.current is not None and presented == f"Bearer {self.idp.current}"
        return HttpResponse(200 if ok else 401)


@pytest.fixture
def idp() -> Idp:
    """A fresh token endpoint."""
    return Idp()


@pytest.fixture
async def token_client(idp: Idp) -> AsyncIterator[FlextApiClient]:
    """The client the plugin sends its token requests with."""
    async with FlextApiClient(transport=MockTransport(idp), default_plugins=False) as client:
        yield client


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _api(auth: OAuth2ClientCredentials, api: Api) -> FlextApiClient:
    return FlextApiClient(
        "http://api.test", transport=MockTransport(api), auth=auth, default_plugins=False
    )


@pytest.mark.parametrize(
    ("kwargs", "exc"),
    [
        ({"leeway": math.nan}, ValueError),
        ({"timeout": math.nan}, ValueError),
        ({"timeout": math.inf}, ValueError),
        ({"timeout": True}, TypeError),
        ({"leeway": "30"}, TypeError),
    ],
)
def test_oauth2_refuses_nan_leeway_and_non_finite_timeout(
    kwargs: dict[str, object], exc: type[Exception]
) -> None:
    """A NaN leeway made every token expire at once (a token request per call) and a
    NaN or infinite timeout failed every token request with PLUGIN_ERROR: both are
    refused at construction, naming the argument."""
    with pytest.raises(exc, match=r"leeway|timeout"):
        OAuth2ClientCredentials(TOKEN_URL, "svc", SECRET, **kwargs)  # type: ignore[arg-type]


async def test_oauth2_infinite_leeway_still_caches_for_half_the_lifetime(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """An infinite leeway is accepted: the token is kept for half its lifetime."""
    clock = FakeClock()
    auth = OAuth2ClientCredentials(
        TOKEN_URL, "svc", SECRET, client=token_client, clock=clock, leeway=math.inf
    )
    client = _api(auth, Api(idp))
    await client.get("/x")
    clock.advance(1799)
    await client.get("/x")
    assert idp.requests == 1


async def test_oauth2_refused_token_is_dropped_when_its_refresh_fails(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """After a 401 whose refresh failed, the refused token is no longer the current one:
    the next call asks the endpoint again instead of sending it to the API."""
    api = Api(idp)
    auth = OAuth2ClientCredentials(TOKEN_URL, "svc", SECRET, client=token_client, clock=FakeClock())
    client = _api(auth, api)
    assert (await client.get("/x")).is_success
    idp.current, idp.down = "rotated", True
    assert (await client.get("/x")).error_code is ErrorCode.AUTH_ERROR
    assert repr(auth).endswith("token=none>")
    api.tokens.clear()
    assert (await client.get("/x")).error_code is ErrorCode.AUTH_ERROR
    assert api.tokens == []  # token-1 was refused: it is not sent again
    assert idp.requests == 3


async def test_oauth2_callers_during_a_refresh_wait_for_it(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """A call that starts while a 401's refresh is in flight waits for the new token
    instead of sending the refused one (a wasted request and a replay)."""
    api = Api(idp)
    auth = OAuth2ClientCredentials(TOKEN_URL, "svc", SECRET, client=token_client, clock=FakeClock())
    client = _api(auth, api)
    assert (await client.get("/x")).is_success
    idp.current = "rotated"
    idp.gate, idp.arrived = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(client.get("/x"))
    await idp.arrived.wait()  # its 401 came back and the refresh is in flight
    second = asyncio.create_task(client.get("/x"))
    await settle()  # the second call reaches the auth stage and parks there
    idp.gate.set()
    assert (await first).is_success
    assert (await second).is_success
    assert api.tokens.count("Bearer token-1") == 2  # the first call, and its 401
    assert idp.requests == 2


@pytest.mark.parametrize("echo", ["header", "bare", "unpadded"])
async def test_oauth2_echoed_basic_credentials_are_scrubbed(
    echo: str, json_logs: LogCapture
) -> None:
    """A token endpoint quoting the request's Authorization header in its refusal does
    not put the base64 credentials (the secret, barely encoded) in the error or logs."""

    def echoing(request: HttpRequest) -> HttpResponse:
        header = request.headers["authorization"]
        quoted = {
            "header": header,
            "bare": header.removeprefix("Basic "),
            "unpadded": header.removeprefix("Basic ").rstrip("="),
        }[echo]
        refusal = {"error": "invalid_client", "error_description": f"bad credentials {quoted}"}
        return HttpResponse(401, content=orjson.dumps(refusal))

    async with FlextApiClient(transport=MockTransport(echoing), default_plugins=False) as tc:
        auth = OAuth2ClientCredentials(TOKEN_URL, "svc", SECRET, client=tc)
        result = await _api(auth, Api(Idp())).get("/x")
    error = result.exception
    assert error is not None and error.code is ErrorCode.AUTH_ERROR
    assert "bad credentials" in error.message
    encoded = base64.b64encode(f"svc:{quote_plus(SECRET)}".encode()).decode().rstrip("=")
    seen = " ".join([str(error), repr(error.details), json_logs.text])
    assert encoded not in seen
    assert SECRET not in seen
