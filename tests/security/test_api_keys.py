"""OWASP API2: API keys only from the X-API-Key header, compared in constant time."""

from __future__ import annotations

import hmac
import io

import pytest
from pydantic import SecretStr

from flext_api import ServerConfig
from flext_api._server_config import AuthConfig
from flext_api.server import Authenticator
from tests.security.apps import secure_app
from tests.server.helpers import serve

KEY = "svc-key-0123456789abcdef"
CONFIG = ServerConfig(auth=AuthConfig(api_keys={"svc": SecretStr(KEY)}))


async def test_key_in_header_is_accepted() -> None:
    """Control: the key in X-API-Key authenticates."""
    async with serve(secure_app(io.StringIO(), CONFIG)) as client:
        response = await client.get("/me", headers={"X-API-Key": KEY})
    assert response.json() == {"sub": "svc"}


async def test_key_in_query_string_is_ignored() -> None:
    """?api_key= / ?x-api-key= / ?apikey= never authenticate."""
    async with serve(secure_app(io.StringIO(), CONFIG)) as client:
        statuses = [
            (await client.get("/me", params={name: KEY})).status_code
            for name in ("api_key", "X-API-Key", "apikey", "key")
        ]
    assert statuses == [401, 401, 401, 401]


async def test_key_in_query_is_redacted_from_logs() -> None:
    """Even ignored, a key sent in the query never reaches the access log."""
    stream = io.StringIO()
    async with serve(secure_app(stream, CONFIG)) as client:
        await client.get("/me", params={"api_key": KEY})
    assert KEY not in stream.getvalue()


async def test_wrong_prefix_or_suffix_is_refused() -> None:
    """Near-miss keys (prefix, suffix, case) are refused."""
    async with serve(secure_app(io.StringIO(), CONFIG)) as client:
        statuses = [
            (await client.get("/me", headers={"X-API-Key": candidate})).status_code
            for candidate in (KEY[:-1], KEY + "0", KEY.upper(), "")
        ]
    assert statuses == [401, 401, 401, 401]


def test_every_configured_key_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Matching does not stop at the first key (no timing signal for which one matched)."""
    compared: list[bytes] = []
    authenticator = Authenticator(AuthConfig(api_keys={n: SecretStr(f"key-{n}") for n in "abc"}))
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert authenticator.match_api_key("key-a") == "a"
    assert len(compared) == 3
