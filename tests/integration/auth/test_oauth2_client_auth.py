"""How the client credentials reach a real token endpoint (RFC 6749 §2.3.1)."""

from __future__ import annotations

import base64
from urllib.parse import unquote_plus

import pytest
from aiohttp import web

from flext_api.client import FlextApiClient
from flext_api.client.auth import OAuth2ClientCredentials

pytestmark = pytest.mark.integration

CLIENT_ID = "svc:1 é"
SECRET = "p:ss%wörd +&=/~*"


@pytest.mark.parametrize("auth_method", ["basic", "body"])
async def test_special_characters_survive_form_encoding(auth_method: str) -> None:
    """':', '%', '+', '&', spaces and non-ASCII in the id and secret: form-urlencoded
    (UTF-8) then Basic, or form fields; the server decodes exactly the originals."""
    received: list[tuple[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        header = request.headers.get("Authorization", "")
        if header:
            user, _, password = base64.b64decode(header[6:]).decode("ascii").partition(":")
            received.append((unquote_plus(user), unquote_plus(password)))
        else:
            received.append((str(form["client_id"]), str(form["client_secret"])))
        return web.json_response({"access_token": "at", "token_type": "Bearer"})

    app = web.Application()
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        auth = OAuth2ClientCredentials(
            f"{url}/token",
            CLIENT_ID,
            SECRET,
            auth_method=auth_method,  # type: ignore[arg-type]
        )
        async with FlextApiClient(url, auth=auth, default_plugins=False):
            assert (await auth.token()).is_success
    finally:
        await runner.cleanup()
    assert received == [(CLIENT_ID, SECRET)]
