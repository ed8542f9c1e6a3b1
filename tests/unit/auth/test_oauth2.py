"""OAuth2ClientCredentials against in-process token endpoint and API (MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials
from flext_api.testing import FakeClock
from flext_api.transports._mock import MockTransport
from tests.unit.observability.logcapture import LogCapture

SECRET = "client-secret-Zq8v+/="
TOKEN_URL = "http://idp.test/token"


class Idp:
    """A token endpoint that counts requests and can refuse or hand out short tokens."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.issued = 0
        self.current: str | None = None
        self.expires_in = 3600
        self.refuse: str | None = None
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse is not None:
            refusal = {"error": self.refuse, "error_description": "refused by test"}
            return HttpResponse(401, content=orjson.dumps(refusal))
        self.issued += 1
        self.current = f"token-{self.issued}"
        body: dict[str, object] = {
            "access_token": self.current,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        return HttpResponse(200, content=orjson.dumps(body))

    def form(self, index: int = 0) -> dict[str, list[str]]:
        return parse_qs((self.requests[index].content or b"").decode())


class Api:
    """A resource that answers 401 unless the bearer token is the IdP's current one."""

    def __init__(self, idp: Idp) -> None:
        self.idp = idp
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.idp.current}":
            return HttpResponse(401, content=b'{"error":"invalid_token"}')
        return HttpResponse(200, content=b'{"ok":true}')


@pytest.fixture
def idp() -> Idp:
    """A fresh token endpoint."""
    return Idp()


@pytest.fixture
async def token_client(idp: Idp) -> AsyncIterator[FlextApiClient]:
    """The client the plugin sends token requests with."""
    async with FlextApiClient(transport=MockTransport(idp), default_plugins=False) as client:
        yield client


def _plugin(client: FlextApiClient, **kwargs: object) -> OAuth2ClientCredentials:
    kwargs.setdefault("clock", FakeClock())
    return OAuth2ClientCredentials(TOKEN_URL, "svc", SECRET, client=client, **kwargs)  # type: ignore[arg-type]


def _api_client(auth: OAuth2ClientCredentials, api: Api) -> FlextApiClient:
    return FlextApiClient(
        "http://api.test", transport=MockTransport(api), auth=auth, default_plugins=False
    )


async def test_first_request_fetches_token_and_sends_it(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """The first call fetches a token and sends it as a bearer token."""
    api = Api(idp)
    result = await _api_client(_plugin(token_client), api).get("/x")
    assert result.is_success
    assert api.requests[0].headers["authorization"] == "Bearer token-1"
    assert idp.form() == {"grant_type": ["client_credentials"]}


async def test_concurrent_first_requests_share_one_token_request(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """50 concurrent first calls cause exactly one token request."""
    plugin = _plugin(token_client)
    client = _api_client(plugin, Api(idp))
    results = await asyncio.gather(*(client.get(f"/x/{i}") for i in range(50)))
    assert all(r.is_success for r in results)
    assert len(idp.requests) == 1
    assert plugin.token_requests == 1


async def test_concurrent_callers_share_a_refusal(idp: Idp, token_client: FlextApiClient) -> None:
    """A refusing endpoint is asked once for all waiting callers; each gets AUTH_ERROR."""
    idp.refuse = "invalid_client"
    client = _api_client(_plugin(token_client), Api(idp))
    results = await asyncio.gather(*(client.get("/x") for _ in range(20)))
    assert {r.error_code for r in results} == {ErrorCode.AUTH_ERROR}
    assert len(idp.requests) == 1
    errors = [r.exception for r in results]
    assert len({id(e) for e in errors}) == 20  # each caller owns its error object
    assert all(e is not None and e.request is not None for e in errors)


async def test_token_is_cached_until_expiry_minus_leeway(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """The token is reused until expires_in - leeway, then fetched again."""
    clock = FakeClock()
    client = _api_client(_plugin(token_client, clock=clock, leeway=30), Api(idp))
    await client.get("/x")
    clock.advance(3600 - 30 - 1)
    await client.get("/x")
    assert len(idp.requests) == 1
    clock.advance(1)
    result = await client.get("/x")
    assert result.is_success
    assert len(idp.requests) == 2


async def test_401_refreshes_once_and_replays(idp: Idp, token_client: FlextApiClient) -> None:
    """A 401 drops the token, fetches a new one and replays the request once."""
    api = Api(idp)
    client = _api_client(_plugin(token_client), api)
    await client.get("/x")
    idp.current = "rotated-by-server"  # the server no longer accepts token-1
    idp.issued = 1
    result = await client.post("/x", json={"a": 1})
    assert result.is_success
    assert len(idp.requests) == 2
    assert [r.headers["authorization"] for r in api.requests[1:]] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert api.requests[2].content == b'{"a":1}'


async def test_second_401_is_returned_not_replayed_again(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """When the fresh token is refused too, the 401 is the result (one replay only)."""
    api = Api(idp)

    def always_401(request: HttpRequest) -> HttpResponse:
        api.requests.append(request)
        return HttpResponse(401)

    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(always_401),
        auth=_plugin(token_client),
        default_plugins=False,
    )
    result = await client.get("/x")
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert result.exception is not None and result.exception.response is not None
    assert result.exception.response.status_code == 401
    assert len(api.requests) == 2
    assert len(idp.requests) == 2


async def test_401_with_fail_on_http_error_off_is_also_refreshed(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """A 401 returned as a response (not a failure) triggers the same refresh."""
    api = Api(idp)
    client = _api_client(_plugin(token_client), api)
    await client.get("/x")
    idp.current = None
    idp.issued = 1
    result = await client.get("/x", fail_on_http_error=False)
    assert result.value.status_code == 200
    assert len(idp.requests) == 2


async def test_concurrent_401s_share_one_refresh(idp: Idp, token_client: FlextApiClient) -> None:
    """Many calls refused with the same old token cause one refresh between them."""
    client = _api_client(_plugin(token_client), Api(idp))
    await client.get("/x")
    idp.current = None
    idp.issued = 1
    results = await asyncio.gather(*(client.get("/x") for _ in range(10)))
    assert all(r.is_success for r in results)
    assert len(idp.requests) == 2


async def test_streamed_body_is_not_replayed_after_401(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """A one-shot stream body cannot be sent twice: the 401 comes back as is."""
    api = Api(idp)
    client = _api_client(_plugin(token_client), api)
    await client.get("/x")
    idp.current = None

    async def body() -> AsyncIterator[bytes]:
        yield b"chunk"

    result = await client.post("/upload", content=body())
    assert result.error_code is ErrorCode.HTTP_STATUS
    assert len(api.requests) == 2
    assert len(idp.requests) == 1


async def test_secret_sent_with_basic_form_encoded(idp: Idp, token_client: FlextApiClient) -> None:
    """By default id and secret are form-encoded, then sent as HTTP Basic (§2.3.1)."""
    await _api_client(_plugin(token_client), Api(idp)).get("/x")
    header = idp.requests[0].headers["authorization"]
    assert base64.b64decode(header[6:]).decode() == "svc:client-secret-Zq8v%2B%2F%3D"
    assert "client_secret" not in idp.form()


async def test_secret_in_body_when_asked(idp: Idp, token_client: FlextApiClient) -> None:
    """auth_method='body' puts client_id and client_secret in the form."""
    await _api_client(_plugin(token_client, auth_method="body"), Api(idp)).get("/x")
    assert "authorization" not in idp.requests[0].headers
    form = idp.form()
    assert form["client_id"] == ["svc"]
    assert form["client_secret"] == [SECRET]


async def test_scopes_and_extra_params_are_sent(idp: Idp, token_client: FlextApiClient) -> None:
    """Scopes go space-separated in `scope`; extra params are added to the form."""
    plugin = OAuth2ClientCredentials(
        TOKEN_URL,
        "svc",
        SECRET,
        ["read", "write"],
        client=token_client,
        extra_params={"audience": "api://x"},
    )
    await _api_client(plugin, Api(idp)).get("/x")
    form = idp.form()
    assert form["scope"] == ["read write"]
    assert form["audience"] == ["api://x"]


async def test_token_endpoint_transport_failure_is_auth_error(token_client: FlextApiClient) -> None:
    """An unreachable token endpoint is AUTH_ERROR naming the cause, not chaining it."""

    def down(request: HttpRequest) -> HttpResponse:
        raise ConnectionRefusedError("refused")

    async with FlextApiClient(transport=MockTransport(down), default_plugins=False) as broken:
        result = await _api_client(_plugin(broken), Api(Idp())).get("/x")
    err = result.exception
    assert err is not None and err.code is ErrorCode.AUTH_ERROR
    assert err.details["cause"] == ErrorCode.CONNECT_ERROR.value
    assert err.__cause__ is None


async def test_secret_never_in_repr_errors_or_logs(
    idp: Idp, token_client: FlextApiClient, json_logs: LogCapture
) -> None:
    """repr, the error text and details, and every log line are free of the secret."""
    idp.refuse = "invalid_client"
    plugin = _plugin(token_client)
    result = await _api_client(plugin, Api(idp)).get("/x")
    err = result.exception
    assert err is not None
    assert "invalid_client (refused by test)" in err.message
    seen = " ".join([repr(plugin), str(err), repr(err), repr(err.details), json_logs.text])
    assert SECRET not in seen
    assert base64.b64encode(f"svc:{SECRET}".encode()).decode() not in seen
    assert json_logs.events("oauth2.token_refused")


async def test_cleanup_cancels_flight_and_waiters_get_auth_error(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """Closing while a token request hangs gives waiting callers AUTH_ERROR, not a hang."""
    idp.gate = asyncio.Event()
    plugin = _plugin(token_client)
    client = _api_client(plugin, Api(idp))
    waiter = asyncio.create_task(client.get("/x"))
    await idp.arrived.wait()
    await plugin.cleanup()
    result = await waiter
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "cancelled" in str(result.exception)


async def test_cancelled_caller_does_not_cancel_the_shared_fetch(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """One caller giving up leaves the token request running for the others."""
    idp.gate = asyncio.Event()
    client = _api_client(_plugin(token_client), Api(idp))
    first = asyncio.create_task(client.get("/x"))
    second = asyncio.create_task(client.get("/x"))
    await idp.arrived.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    idp.gate.set()
    assert (await second).is_success
    assert len(idp.requests) == 1


async def test_repr_shows_token_state(idp: Idp, token_client: FlextApiClient) -> None:
    """repr says none, valid or expired, and masks the secret."""
    clock = FakeClock()
    plugin = _plugin(token_client, clock=clock)
    assert repr(plugin).endswith("client_secret=[REDACTED] token=none>")
    assert (await plugin.token()).is_success
    assert repr(plugin).endswith("token=valid>")
    clock.advance(7200)
    assert repr(plugin).endswith("token=expired>")


@pytest.mark.parametrize(
    ("args", "kwargs", "exc"),
    [
        (("ftp://idp/token", "id", "s"), {}, ValueError),
        (("/token", "id", "s"), {}, ValueError),
        ((123, "id", "s"), {}, ValueError),
        ((TOKEN_URL, "", "s"), {}, ValueError),
        ((TOKEN_URL, "id", ""), {}, ValueError),
        ((TOKEN_URL, "id", "s", ["bad scope"]), {}, ValueError),
        ((TOKEN_URL, "id", "s", ['q"uote']), {}, ValueError),
        ((TOKEN_URL, "id", "s"), {"auth_method": "digest"}, ValueError),
        ((TOKEN_URL, "id", "s"), {"extra_params": {"grant_type": "x"}}, ValueError),
        ((TOKEN_URL, "id", "s"), {"leeway": -1}, ValueError),
        ((TOKEN_URL, "id", "s"), {"timeout": 0}, ValueError),
    ],
)
def test_construction_rejects_bad_arguments(
    args: tuple[object, ...], kwargs: dict[str, object], exc: type[Exception]
) -> None:
    """Bad URL, empty credentials, bad scopes, method, params, leeway or timeout."""
    with pytest.raises(exc):
        OAuth2ClientCredentials(*args, **kwargs)  # type: ignore[arg-type]


def test_space_separated_scope_string_is_split() -> None:
    """A scope string is split on spaces."""
    assert OAuth2ClientCredentials(TOKEN_URL, "id", "s", "read  write").scopes == ("read", "write")


async def test_plugin_error_in_token_path_is_not_swallowed(token_client: FlextApiClient) -> None:
    """A token client answering with a FlextApiError subclass still yields AUTH_ERROR."""

    def boom(request: HttpRequest) -> HttpResponse:
        raise FlextApiError.from_code(ErrorCode.READ_TIMEOUT, "slow idp")

    async with FlextApiClient(transport=MockTransport(boom), default_plugins=False) as slow:
        result = await _api_client(_plugin(slow), Api(Idp())).get("/x")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert "READ_TIMEOUT: slow idp" in str(result.exception)


async def test_refused_refresh_after_401_is_auth_error(
    idp: Idp, token_client: FlextApiClient
) -> None:
    """When the refresh after a 401 is refused, the call fails with AUTH_ERROR."""
    client = _api_client(_plugin(token_client), Api(idp))
    await client.get("/x")
    idp.current, idp.refuse = None, "invalid_client"
    result = await client.get("/x")
    assert result.error_code is ErrorCode.AUTH_ERROR
    assert len(idp.requests) == 2


async def test_failure_to_close_the_401_is_logged_and_replay_goes_on(
    idp: Idp, token_client: FlextApiClient, json_logs: LogCapture
) -> None:
    """A 401 response whose release fails is logged; the replay still happens."""
    api = Api(idp)

    async def broken_close() -> None:
        raise OSError("socket gone")

    def handler(request: HttpRequest) -> HttpResponse:
        response = api(request)
        if response.status_code == 401:
            return HttpResponse(401, close=broken_close)
        return response

    client = FlextApiClient(
        "http://api.test",
        transport=MockTransport(handler),
        auth=_plugin(token_client),
        default_plugins=False,
    )
    await client.get("/x")
    idp.current = None
    assert (await client.get("/x")).is_success
    (record,) = json_logs.events("oauth2.close_failed")
    assert "socket gone" in record["error"]


async def test_cleanup_stops_a_flight_running_on_another_loop(idp: Idp) -> None:
    """A plugin shared with a client on another loop cancels that loop's fetch there."""
    started = threading.Event()

    async def slow(request: HttpRequest) -> HttpResponse:
        started.set()
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    outcome: list[FlextResult[Any]] = []

    token_client = FlextApiClient(transport=MockTransport(slow), default_plugins=False)
    shared = _plugin(token_client)

    async def other_loop() -> None:
        outcome.append(await shared.token())

    thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
    thread.start()
    assert await asyncio.to_thread(started.wait, 5)
    await shared.cleanup()
    await asyncio.to_thread(thread.join, 5)
    assert outcome[0].error_code is ErrorCode.AUTH_ERROR
