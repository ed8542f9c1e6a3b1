"""Secret names are matched ignoring case, '-' and '_' (camelCase folded), in JSON at
any depth, in JSON text that does not parse, in forms and in queries; URLs in headers
are cut after redaction."""

from __future__ import annotations

import orjson
import pytest

from flext_api._models import HttpRequest
from flext_api._redact import (
    DEFAULT_SENSITIVE_HEADERS,
    DEFAULT_SENSITIVE_QUERY_PARAMS,
    redact_headers,
    redact_query,
)
from flext_api.client.observability._redaction import Redactor

SPELLINGS = ["Password", "PASSWORD", "api-key", "API_KEY", "apiKey", "accessToken",
             "Access-Token", "clientSecret", "X-Api-Key", "xApiKey", "REFRESH_TOKEN"]  # fmt: skip


@pytest.mark.parametrize("key", SPELLINGS)
def test_json_key_in_any_spelling_is_masked(key: str) -> None:
    """A JSON key spelled with other case, '-' for '_' or camelCase is masked."""
    out = Redactor().body(orjson.dumps({key: "s3cr3t", "n": 1}), "application/json", 1024)
    assert orjson.loads(out) == {key: "[REDACTED]", "n": 1}


def test_json_keys_are_masked_in_nested_objects_and_lists() -> None:
    """Folded matching reaches objects in lists in objects."""
    body = {"a": [{"b": {"accessToken": "t1"}}, [{"Client-Secret": "t2"}]], "ok": "x"}
    out = Redactor().body(orjson.dumps(body), "application/json", 1024)
    assert orjson.loads(out) == {
        "a": [{"b": {"accessToken": "[REDACTED]"}}, [{"Client-Secret": "[REDACTED]"}]],
        "ok": "x",
    }


def test_json_text_that_does_not_parse_is_masked_by_folded_keys() -> None:
    """JSON cut short is masked member by member, keys folded and escapes decoded."""
    text = b'{"accessToken": "t1", "\\u0050assword": "t2", "Api-Key": "t3", "n": 1, "cut'
    out = Redactor().body(text, "application/json", 1024)
    assert "t1" not in out and "t2" not in out and "t3" not in out
    assert '"n": 1' in out


def test_custom_names_are_folded_too() -> None:
    """A name added by the caller (tenant_key) matches tenantKey and Tenant-Key."""
    out = Redactor(params=["tenant_key"]).body(
        orjson.dumps({"tenantKey": "k1", "Tenant-Key": "k2"}), "application/json", 1024
    )
    assert orjson.loads(out) == {"tenantKey": "[REDACTED]", "Tenant-Key": "[REDACTED]"}


def test_form_fields_and_query_parameters_are_folded() -> None:
    """accessToken and Client-Secret in a query or a form are masked."""
    assert redact_query("accessToken=a&Client-Secret=b&page=2") == (
        "accessToken=[REDACTED]&Client-Secret=[REDACTED]&page=2"
    )


def test_secret_values_of_folded_query_names_are_scrubbed_from_text() -> None:
    """An error message echoing ?accessToken=... loses the value."""
    request = HttpRequest(method="GET", url="http://h/p?accessToken=abcd1234")
    redactor = Redactor()
    assert redactor.text("sent abcd1234", redactor.secrets(request)) == "sent [REDACTED]"


@pytest.mark.parametrize(
    "name", ["x-amz-security-token", "x-goog-api-key", "ocp-apim-subscription-key"]
)
def test_cloud_credential_headers_are_sensitive_by_default(name: str) -> None:
    """AWS STS session tokens, Google API keys and Azure API Management subscription
    keys are masked by default, any case."""
    assert name in DEFAULT_SENSITIVE_HEADERS
    assert redact_headers([(name.upper(), "v")]) == {name: "[REDACTED]"}


@pytest.mark.parametrize(
    "param",
    ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature", "X-Goog-Credential",
     "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "X-Goog-Api-Key"],
)  # fmt: skip
def test_presigned_url_parameters_are_sensitive_by_default(param: str) -> None:
    """OpenTelemetry's default url.query list and the SigV4/GCS V4 names are masked."""
    assert param.lower() in DEFAULT_SENSITIVE_QUERY_PARAMS
    assert redact_query(f"{param}=v&x=1") == f"{param}=[REDACTED]&x=1"


def test_location_header_url_is_cut_after_redaction() -> None:
    """A huge Location is logged cut with a count; its token is masked, not halved."""
    url = "https://h/" + "p" * (8192 - 20) + "?token=SECRETSECRET" + "x" * 50_000
    [value] = redact_headers([("Location", url)]).values()
    assert len(value) < 8192 + 20
    assert value.startswith("https://h/ppp") and value.endswith(" more]")
    assert "SEC" not in value
