"""Reading a token endpoint's answer (RFC 6749 §5): a token or a clear AUTH_ERROR."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from flext_api import ErrorCode, HttpResponse
from flext_api._errors import AuthError
from flext_api.client.auth import AccessToken
from flext_api.client.auth._oauth2_token import parse_token_response

SECRET = "client-secret-Zq8v"
URL = "https://u:pw@idp.test/token?tenant=1&client_secret=x"


def _parse(status: int, body: Any, *, leeway: float = 30.0) -> AccessToken:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_token_response(
        HttpResponse(status, content=content),
        now=100.0,
        leeway=leeway,
        token_url=URL,
        client_id="svc",
        secret=SECRET,
    )


def test_token_with_lifetime_expires_leeway_early() -> None:
    """expires_in counts from the send time, minus the leeway."""
    token = _parse(200, {"access_token": "at", "token_type": "Bearer", "expires_in": 3600})
    assert token.value == "at"
    assert token.expires_at == pytest.approx(100 + 3600 - 30)


def test_short_lifetime_keeps_at_least_half() -> None:
    """A lifetime shorter than twice the leeway is still used for half of it."""
    token = _parse(200, {"access_token": "at", "token_type": "bearer", "expires_in": 10})
    assert token.expires_at == pytest.approx(105.0)


def test_string_expires_in_is_accepted() -> None:
    """Some servers send expires_in as a string; it is read as a number."""
    token = _parse(200, {"access_token": "at", "token_type": "Bearer", "expires_in": "60"})
    assert token.expires_at == pytest.approx(130.0)


@pytest.mark.parametrize("raw", [None, 0, -5, "soon", True])
def test_missing_or_bad_expires_in_means_no_known_expiry(raw: object) -> None:
    """No usable expires_in: the token is kept until the API refuses it."""
    body: dict[str, Any] = {"access_token": "at", "token_type": "Bearer"}
    if raw is not None:
        body["expires_in"] = raw
    token = _parse(200, body)
    assert token.expires_at is None
    assert token.usable(1e12)


def test_scope_is_kept() -> None:
    """The granted scope is kept on the token."""
    token = _parse(200, {"access_token": "at", "token_type": "Bearer", "scope": "read write"})
    assert token.scope == "read write"


def test_token_repr_hides_value() -> None:
    """An AccessToken's repr never shows the token."""
    assert "sekrit" not in repr(AccessToken("sekrit", None))


def test_refusal_names_status_error_and_description() -> None:
    """A 4xx with an OAuth error body becomes AUTH_ERROR with both fields."""
    with pytest.raises(AuthError) as info:
        _parse(401, {"error": "invalid_client", "error_description": "bad secret"})
    err = info.value
    assert err.code is ErrorCode.AUTH_ERROR
    assert "HTTP 401: invalid_client (bad secret)" in err.message
    assert "for client 'svc'" in err.message
    assert err.details["oauth_error"] == "invalid_client"
    assert err.details["status"] == 401


def test_refusal_message_never_holds_secret_or_url_credentials() -> None:
    """An echoed secret and the URL's userinfo/secret params are masked."""
    with pytest.raises(AuthError) as info:
        _parse(400, {"error": "invalid_request", "error_description": f"got {SECRET}\r\nX: y"})
    text = str(info.value) + repr(info.value.details)
    assert SECRET not in text
    assert "pw@" not in text
    assert "client_secret=x" not in text
    assert "\r" not in text and "\n" not in text


def test_refusal_without_oauth_body_says_so() -> None:
    """A refusal with a non-OAuth body still names the status."""
    with pytest.raises(AuthError, match=r"HTTP 503: no OAuth error in the body"):
        _parse(503, b"<html>down</html>")


def test_long_description_is_shortened() -> None:
    """A huge error_description is truncated in the message."""
    with pytest.raises(AuthError) as info:
        _parse(400, {"error": "invalid_scope", "error_description": "x" * 5000})
    assert len(info.value.message) < 500


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not a JSON object"),
        ([1, 2], "not a JSON object"),
        ({"token_type": "Bearer"}, "no usable access_token"),
        ({"access_token": "", "token_type": "Bearer"}, "no usable access_token"),
        ({"access_token": "a\nb", "token_type": "Bearer"}, "no usable access_token"),
        ({"access_token": "at", "token_type": "mac"}, "unsupported token_type 'mac'"),
        ({"access_token": "at"}, "unsupported token_type 'None'"),
    ],
)
def test_unusable_success_answer_is_auth_error(body: Any, match: str) -> None:
    """A 200 without a usable bearer token is AUTH_ERROR saying why."""
    with pytest.raises(AuthError, match=match):
        _parse(200, body)


def test_refusal_without_description_names_the_error_alone() -> None:
    """An OAuth error without error_description is named on its own."""
    with pytest.raises(AuthError, match=r"HTTP 400: invalid_scope$"):
        _parse(400, {"error": "invalid_scope"})


def test_json_refusal_without_error_field_says_so() -> None:
    """A JSON refusal lacking `error` is reported as having no OAuth error."""
    with pytest.raises(AuthError, match="no OAuth error in the body"):
        _parse(403, {"message": "forbidden"})


@pytest.mark.parametrize("raw", ["inf", "Infinity", "nan", "-inf"])
def test_non_finite_expires_in_means_no_known_expiry(raw: str) -> None:
    """An infinite or NaN lifetime is not a lifetime: the token is kept until a 401."""
    token = _parse(200, {"access_token": "at", "token_type": "Bearer", "expires_in": raw})
    assert token.expires_at is None
