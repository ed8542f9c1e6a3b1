"""OAuth2ClientCredentials when the API refuses a token and the endpoint is down (fault server)."""

from __future__ import annotations

import pytest

from flext_api import ErrorCode, FlextApiError, FlextResult, HttpRequest, HttpResponse
from flext_api.client import CallNext, FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials
from tests.servers.fault import FaultServer
from tests.servers.fault_routes_auth import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET

pytestmark = pytest.mark.integration


class Outage:
    """A middleware of the token client: while ``down``, token requests fail to connect."""

    def __init__(self) -> None:
        self.down = False

    async def __call__(
        self, request: HttpRequest, call_next: CallNext
    ) -> FlextResult[HttpResponse]:
        if self.down:
            return FlextResult.fail(
                FlextApiError.from_code(ErrorCode.CONNECT_ERROR, "idp unreachable")
            )
        return await call_next(request)


async def test_a_refused_token_is_not_sent_again_when_its_refresh_failed(
    fault: FaultServer,
) -> None:
    """The resource refuses the token (revoked) and the refresh fails: the refused token
    is dropped, so the next call asks the endpoint first instead of sending it again."""
    tenant = "hostile-drop"
    outage = Outage()
    async with FlextApiClient(plugins=[outage], default_plugins=False) as token_client:
        auth = OAuth2ClientCredentials(
            f"{fault.url}/oauth/{tenant}/token",
            OAUTH_CLIENT_ID,
            OAUTH_CLIENT_SECRET,
            client=token_client,
        )
        async with FlextApiClient(fault.url, auth=auth, default_plugins=False) as client:
            assert (await client.get(f"/oauth/{tenant}/protected")).is_success
            assert (await client.post(f"/oauth/{tenant}/revoke")).value.json()["revoked"]
            outage.down = True
            refused = await client.get(f"/oauth/{tenant}/protected")
            assert refused.error_code is ErrorCode.AUTH_ERROR  # 401, then no new token
            again = await client.get(f"/oauth/{tenant}/protected")
            assert again.error_code is ErrorCode.AUTH_ERROR
            assert again.exception is not None
            assert again.exception.details["cause"] == ErrorCode.CONNECT_ERROR.value
            outage.down = False
            recovered = await client.get(f"/oauth/{tenant}/protected")
    assert recovered.is_success
    assert recovered.value.json()["token"] == 2
    # The first call and the refused one; not the call made while the endpoint was down.
    assert fault.hits(f"/oauth/{tenant}/protected") == 3
    assert fault.hits(f"/oauth/{tenant}/token") == 2
    assert auth.token_requests == 4
