"""Redaction of URLs carried in headers: Location, Content-Location, Referer."""

from __future__ import annotations

from flext_api import Headers
from flext_api._redact import redact_headers
from flext_api.client.observability import Redactor


def test_location_keeps_no_query_secret_or_userinfo() -> None:
    """A redirect to a presigned URL shows neither its signature nor a userinfo."""
    headers = Headers(
        [
            (
                "Location",
                "https://u:pw-Zq8v@bucket.test/o?X-Amz-Signature=sig-Zq8v&X-Amz-Date=20260101",
            ),
            ("Content-Location", "/doc?%74oken=tok-Zq8v&page=2"),
            ("REFERER", "https://app.test/cb?Access_Token=at-Zq8v#id_token=it-Zq8v"),
        ]
    )
    shown = Redactor().header_map(headers)
    assert "Zq8v" not in str(shown)
    assert shown == {
        "location": "https://[REDACTED]@bucket.test/o?X-Amz-Signature=[REDACTED]&X-Amz-Date=20260101",
        "content-location": "/doc?%74oken=[REDACTED]&page=2",
        "referer": "https://app.test/cb?Access_Token=[REDACTED]",
    }


def test_url_headers_use_the_configured_parameters() -> None:
    """Parameters added with redact_params are masked in a Location as in the URL."""
    headers = Headers([("Location", "/next?sig2=s-Zq8v&q=1")])
    assert Redactor(params=["sig2"]).header_map(headers) == {
        "location": "/next?sig2=[REDACTED]&q=1"
    }


def test_other_headers_are_kept_as_sent() -> None:
    """Only URL-valued headers are parsed: a Link or a custom header is kept, escaped."""
    pairs = [(b"link", b"</p?token=x>; rel=next"), (b"x-note", b"a\r\nb")]
    assert redact_headers(pairs) == {"link": "</p?token=x>; rel=next", "x-note": "a\\x0d\\x0ab"}
