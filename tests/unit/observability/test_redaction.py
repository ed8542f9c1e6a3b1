"""Redactor: secrets masked by name and by value, text escaped, bodies summarized."""

from __future__ import annotations

import orjson
import pytest

from flext_api import Headers, HttpRequest
from flext_api.client.auth import mark_sensitive
from flext_api.client.observability import Redactor


def test_url_masks_whole_userinfo() -> None:
    """A token used as the URL's user name is masked, not only a password."""
    assert Redactor().url("https://TOKEN123@host/p") == "https://[REDACTED]@host/p"
    assert Redactor().url("https://u:pw@host/p") == "https://[REDACTED]@host/p"


def test_url_masks_sensitive_query_values_and_keeps_others() -> None:
    """Default and configured parameters are masked; the rest is kept byte for byte."""
    redactor = Redactor(params=["sig2"])
    url = "http://h/p?access_token=a1&page=2&SIG2=zz&q=%0D%0A"
    assert redactor.url(url) == "http://h/p?access_token=[REDACTED]&page=2&SIG2=[REDACTED]&q=%0D%0A"


def test_url_escapes_control_characters() -> None:
    """A raw CR/LF in a URL (from a hand-built request) is escaped."""
    assert Redactor().url("http://h/a\r\nb") == "http://h/a\\x0d\\x0ab"


def test_unparsable_url_drops_query() -> None:
    """A URL urlsplit refuses is logged without its query string."""
    assert Redactor().url("http://[::1/p?token=abc") == "http://[::1/p"


def test_url_without_scheme_is_only_escaped() -> None:
    """A relative URL has no userinfo to mask."""
    assert Redactor().url("/p?x=1") == "/p?x=1"


def test_header_map_masks_defaults_and_configured() -> None:
    """Authorization, Cookie, X-API-Key and configured names are masked."""
    headers = Headers([("Authorization", "Bearer t"), ("Cookie", "c=1"), ("X-Trace", "ok"),
                       ("X-My-Secret", "s"), ("X-API-Key", "k")])  # fmt: skip
    out = Redactor(headers=["X-My-Secret"]).header_map(headers)
    assert out == {
        "authorization": "[REDACTED]",
        "cookie": "[REDACTED]",
        "x-trace": "ok",
        "x-my-secret": "[REDACTED]",
        "x-api-key": "[REDACTED]",
    }


def test_for_request_adds_names_marked_by_auth() -> None:
    """Names an auth plugin marked on the request are masked too."""
    request = HttpRequest("GET", "http://h/p?k=v", headers={"X-Tenant-Key": "secret1"})
    mark_sensitive(request, headers=["X-Tenant-Key"], params=["k"])
    redactor = Redactor().for_request(request)
    assert redactor.header_map(request.headers) == {"x-tenant-key": "[REDACTED]"}
    assert redactor.url(request.url) == "http://h/p?k=[REDACTED]"


def test_for_request_without_new_names_returns_same_redactor() -> None:
    """No marks, or marks already covered: no new object."""
    base = Redactor()
    plain = HttpRequest("GET", "http://h/")
    marked = HttpRequest("GET", "http://h/")
    mark_sensitive(marked, headers=["authorization"])
    assert base.for_request(plain) is base
    assert base.for_request(marked) is base


def test_secrets_collects_header_query_and_userinfo_values() -> None:
    """Values of secret headers (and bearer tokens alone), params and userinfo."""
    request = HttpRequest(
        "GET",
        "http://usr:pass1234@h/p?token=tok%2B1&page=2",
        headers={"Authorization": "Bearer abcd1234", "Accept": "text/plain"},
    )
    secrets = Redactor().secrets(request)
    assert {"Bearer abcd1234", "abcd1234", "tok%2B1", "tok+1", "usr:pass1234", "pass1234"} <= set(
        secrets
    )
    assert "text/plain" not in secrets and "2" not in secrets
    assert secrets == sorted(secrets, key=len, reverse=True)


def test_text_scrubs_secret_values_and_escapes() -> None:
    """Free text loses every secret value and its control characters."""
    out = Redactor().text("failed with abcd1234\r\nnext", ["abcd1234"])
    assert out == "failed with [REDACTED]\\x0d\\x0anext"


def test_form_body_masks_sensitive_fields() -> None:
    """A urlencoded body has its password/client_secret values masked."""
    body = b"grant_type=client_credentials&client_secret=s3cr3t&password=p"
    out = Redactor().body(body, "application/x-www-form-urlencoded; charset=utf-8", 1024)
    assert out == "grant_type=client_credentials&client_secret=[REDACTED]&password=[REDACTED]"


def test_json_body_masks_sensitive_keys_at_any_depth() -> None:
    """JSON keys named like secrets are masked, nested ones too."""
    body = orjson.dumps({"user": "a", "password": "p", "items": [{"token": "t", "n": 1}]})
    out = Redactor().body(body, "application/vnd.api+json", 1024)
    assert orjson.loads(out) == {
        "user": "a",
        "password": "[REDACTED]",
        "items": [{"token": "[REDACTED]", "n": 1}],
    }


def test_invalid_json_body_is_shown_as_text() -> None:
    """A body claiming JSON that does not parse is shown as text."""
    assert Redactor().body(b"{oops", "application/json", 1024) == "{oops"


def test_huge_json_body_is_summarized() -> None:
    """JSON too large to parse for redaction is summarized, not dumped."""
    body = b"[" + b"1," * (1 << 20) + b"1]"
    assert Redactor().body(body, "application/json", 1024).endswith("too large to redact>")


def test_body_is_truncated_and_escaped() -> None:
    """Past the limit a body is cut with a count; CR/LF are escaped."""
    out = Redactor().body(b"ab\r\n" + b"x" * 100, "text/plain", 6)
    assert out == "ab\\x0d\\x0axx...[98 more]"


@pytest.mark.parametrize("ctype", [None, "application/octet-stream"])
def test_other_bodies_decode_with_replacement(ctype: str | None) -> None:
    """Binary bodies are decoded with replacement characters."""
    assert Redactor().body(b"\xffok", ctype, 10) == "\ufffdok"


def test_repr_counts_names() -> None:
    """repr gives the size of both name sets."""
    assert repr(Redactor()).startswith("<Redactor headers=")
