"""Request building: URL joining, params, headers and bodies, and INVALID_REQUEST for bad input."""

from __future__ import annotations

import io
from typing import Any

import pytest

from flext_api import ClientConfig, ErrorCode, HttpRequest, HttpResponse, TimeoutConfig
from flext_api._errors import ConfigError, InvalidRequestError
from flext_api.client import USE_CLIENT_DEFAULT, FlextApiClient, UseClientDefault
from flext_api.client._request import build_url, same_origin
from flext_api.transports import MockTransport


def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, content=request.content or b"")


def _client(base: str | None = "http://api.test/v1", **kwargs: Any) -> FlextApiClient:
    return FlextApiClient(base, transport=MockTransport(_echo), default_plugins=False, **kwargs)


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://h/api", "/items", "http://h/api/items"),
        ("http://h/api/", "items", "http://h/api/items"),
        ("http://h", "", "http://h"),
        ("http://h/api", "https://other/x", "https://other/x"),
        ("http://h", "/a b", "http://h/a%20b"),
        ("http://h", "/already%20encoded", "http://h/already%20encoded"),
        (None, "http://h/x?y=1", "http://h/x?y=1"),
        # Schemes are case-insensitive (RFC 3986 §3.1): written in lower case.
        (None, "HTTP://H/x", "http://H/x"),
        ("Https://h/api", "/items", "https://h/api/items"),
        (None, "SERVICE://orders/x", "service://orders/x"),
    ],
)
def test_url_joining(base: str | None, url: str, expected: str) -> None:
    """Relative URLs extend the base path; absolute ones stand alone; unsafe chars are encoded."""
    from flext_api.client._request import normalize_base_url

    assert build_url(normalize_base_url(base), url, None) == expected


def test_params_append_to_an_existing_query() -> None:
    """Params are added with & when the URL already has a query; a str is used as is."""
    assert build_url("http://h", "/x?a=1", {"b": 2}) == "http://h/x?a=1&b=2"
    assert build_url("http://h", "/x", "raw=1") == "http://h/x?raw=1"
    assert build_url("http://h", "/x", [("k", "v"), ("k", False)]) == "http://h/x?k=v&k=false"
    assert build_url("http://h", "/x", {"only": None}) == "http://h/x"
    # None inside a list is left out too (it was sent as the text "None").
    assert build_url("http://h", "/x", {"k": [1, None, 2.5]}) == "http://h/x?k=1&k=2.5"


def test_none_and_null_values_in_bodies() -> None:
    """A None form field is left out (urlencoded and multipart alike); JSON null and
    finite floats pass."""
    client = _client()
    form = client.build_request("POST", "/x", data={"a": None, "b": [None, "y"]})
    assert form.content == b"b=y"
    multipart = client.build_request("POST", "/x", data={"a": None}, files={"f": b"z"})
    assert b'name="a"' not in (multipart.content or b"")
    body = client.build_request("POST", "/x", json={"a": None, "b": 1.5}).content
    assert body == b'{"a":null,"b":1.5}'


@pytest.mark.parametrize(
    "url", ["http://key:SECRETab/cd@h/", "http://key:SECRET@h:99999/", "http://u:SECRET@[::1/"]
)
async def test_a_malformed_url_error_does_not_quote_its_password(url: str) -> None:
    """urlsplit's message quotes the port it could not read: for a password holding '/',
    that is the password, and it went into the INVALID_REQUEST message."""
    client = FlextApiClient("http://h", transport=MockTransport(_echo), default_plugins=False)
    result = await client.get(url)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "SECRET" not in str(result.error) and "malformed URL" in str(result.error)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://h/x", "unsupported URL scheme"),
        ("http:///nohost", "has no host"),
        ("http://h:99999/", "malformed URL"),
        ("http://h:0/", "port 0"),
        ("/x\r\nHost: evil", "control character"),
        ("http://h/x\nY", "control character"),
        ("x\x00", "control character"),
        # A service:// authority is a service name: no port, no user info, no spaces.
        ("service://orders:80/x", "does not name a service"),
        ("service://user@orders/x", "does not name a service"),
        ("service://or ders/x", "does not name a service"),
    ],
)
async def test_bad_urls_are_invalid_request(url: str, fragment: str) -> None:
    """Malformed URLs fail with INVALID_REQUEST before anything is sent."""
    transport = MockTransport(_echo)
    client = FlextApiClient("http://h", transport=transport, default_plugins=False)
    result = await client.get(url)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert fragment in (result.error or "")
    assert transport.requests == []


async def test_relative_url_without_base_is_invalid() -> None:
    """A relative URL on a client without base_url is INVALID_REQUEST."""
    result = await _client(None).get("/x")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "needs a base_url" in (result.error or "")


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "v\r\nInjected: yes"}, {"X-A": "v\x00"}, {"Bad Name": "v"}, {"X:A": "v"}],
)
async def test_bad_headers_are_invalid_request(headers: dict[str, str]) -> None:
    """CR/LF/NUL in a value or a non-token name is INVALID_REQUEST."""
    result = await _client().get("/x", headers=headers)
    assert result.error_code is ErrorCode.INVALID_REQUEST


def test_bad_client_settings_fail_at_construction() -> None:
    """A bad base URL or default header is a ConfigError when the client is built."""
    with pytest.raises(ConfigError, match="unsupported URL scheme"):
        FlextApiClient("ws://h")
    with pytest.raises(ConfigError, match="control character"):
        FlextApiClient("http://h", headers={"X": "a\nb"})


async def test_json_body_and_content_type() -> None:
    """json= is serialized with orjson and labelled application/json."""
    client = _client()
    request = client.build_request("POST", "/x", json={"a": [1, 2]})
    assert request.content == b'{"a":[1,2]}'
    assert request.headers["content-type"] == "application/json"
    result = await client.post("/x", json={"a": object()})
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "not JSON-serializable" in (result.error or "")


def test_explicit_content_type_wins() -> None:
    """A caller's Content-Type is kept."""
    request = _client().build_request(
        "POST", "/x", json=[1], headers={"Content-Type": "application/vnd.api+json"}
    )
    assert request.headers.get_list("content-type") == ["application/vnd.api+json"]


def test_conflicting_bodies_are_refused() -> None:
    """Passing two body arguments is INVALID_REQUEST naming both."""
    with pytest.raises(InvalidRequestError, match="json, content"):
        _client().build_request("POST", "/x", json=1, content=b"x")
    with pytest.raises(InvalidRequestError, match="data= must be a mapping"):
        _client().build_request("POST", "/x", data="raw", files={"f": b"x"})
    with pytest.raises(InvalidRequestError, match="content= must be bytes"):
        _client().build_request("POST", "/x", content=123)


def test_raw_data_and_content() -> None:
    """data= as str/bytes and content= as str/bytes are sent as bytes without a content type."""
    client = _client()
    assert client.build_request("POST", "/x", data="é").content == "é".encode()
    assert client.build_request("POST", "/x", data=b"\x00").content == b"\x00"
    assert client.build_request("POST", "/x", content="t").content == b"t"
    assert client.build_request("POST", "/x", content=bytearray(b"ba")).content == b"ba"
    assert "content-type" not in client.build_request("POST", "/x", content=b"x").headers


def test_multipart_encoding() -> None:
    """files= accepts bytes, str, file objects and tuples; names are escaped."""
    request = _client().build_request(
        "POST",
        "/x",
        data={"tags": ["a", "b"], "n": 1},
        files={
            "plain": b"bytes",
            "text": "str-body",
            "fileobj": io.BytesIO(b"from-file"),
            "tuple": ("report.csv", b"a,b"),
            'we"ird': ("x.bin", b"\x00", "application/x-custom"),
        },
    )
    body = request.content or b""
    ctype = request.headers["content-type"]
    boundary = ctype.split("boundary=")[1]
    assert body.endswith(f"--{boundary}--\r\n".encode())
    assert body.count(f"--{boundary}\r\n".encode()) == 8
    assert b'name="tags"\r\n\r\na\r\n' in body and b'name="tags"\r\n\r\nb\r\n' in body
    assert b'filename="report.csv"\r\nContent-Type: text/csv' in body
    assert b'name="we%22ird"; filename="x.bin"\r\nContent-Type: application/x-custom' in body
    assert b"from-file" in body and b"str-body" in body


def test_file_object_with_text_and_a_name() -> None:
    """A text file object is encoded; its name gives the filename."""
    stream = io.StringIO("text-io")
    stream.name = "/tmp/dir/notes.txt"
    request = _client().build_request("POST", "/x", files={"f": stream})
    assert b'filename="notes.txt"\r\nContent-Type: text/plain' in (request.content or b"")


def test_per_request_overrides_land_in_the_request() -> None:
    """timeout, retry, fail_on_http_error and follow_redirects are carried per request."""
    client = _client(timeout=3.0)
    assert client.build_request("GET", "/x").timeout == TimeoutConfig.of(3.0)
    request = client.build_request(
        "GET", "/x", timeout=None, retry=0, fail_on_http_error=False, follow_redirects=False
    )
    assert request.timeout is not None and request.timeout.read is None
    assert request.deadline is None
    assert request.extensions == {
        "retry": 0,
        "fail_on_http_error": False,
        "follow_redirects": False,
    }
    untouched = client.build_request("GET", "/x", retry=USE_CLIENT_DEFAULT)
    assert "retry" not in untouched.extensions


def test_idempotency_key_option() -> None:
    """A string key becomes the header; True asks the retry stage to generate one."""
    client = _client()
    assert (
        client.build_request("POST", "/x", idempotency_key="k-1").headers["Idempotency-Key"]
        == "k-1"
    )
    assert client.build_request("POST", "/x", idempotency_key=True).extensions["idempotency_key"]
    with pytest.raises(InvalidRequestError):
        client.build_request("POST", "/x", idempotency_key="bad\nkey")


def test_invalid_method_is_refused() -> None:
    """A method with non-letters is INVALID_REQUEST."""
    with pytest.raises(InvalidRequestError, match="invalid HTTP method"):
        _client().build_request("GE T", "/x")


def test_sentinel_is_a_falsy_singleton() -> None:
    """USE_CLIENT_DEFAULT is one falsy object with a readable repr."""
    assert UseClientDefault() is USE_CLIENT_DEFAULT
    assert not USE_CLIENT_DEFAULT
    assert repr(USE_CLIENT_DEFAULT) == "USE_CLIENT_DEFAULT"


def test_same_origin() -> None:
    """Default ports count; host case is ignored; scheme matters."""
    assert same_origin("http://H:80/a", "http://h/b")
    assert not same_origin("http://h/a", "https://h/a")
    assert not same_origin("http://h/a", "http://h:8080/a")


def test_config_headers_and_user_agent() -> None:
    """Config headers and the user agent are sent; constructor headers override them."""
    cfg = ClientConfig(headers={"X-Env": "prod", "X-Over": "cfg"}, user_agent="svc/1")
    request = _client(config=cfg, headers={"X-Over": "ctor"}).build_request("GET", "/")
    assert request.headers["user-agent"] == "svc/1"
    assert request.headers["x-env"] == "prod" and request.headers["x-over"] == "ctor"


async def test_error_messages_never_show_query_or_userinfo() -> None:
    """A refused URL is described without its query string or credentials."""
    result = await _client().get("ftp://user:pw@h/x?token=s3cret")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "s3cret" not in (result.error or "") and "pw" not in (result.error or "")
    assert "ftp://h/x" in (result.error or "")


@pytest.mark.parametrize(
    ("base", "url", "host"),
    [
        ("http://API.test:8080/v1", "/items", "api.test:8080"),
        ("http://api.test/v1", "http://api.test/other", "api.test"),
        ("http://api.test", "http://api.test.evil.example/x", "api.test.evil.example"),
        ("http://api.test", "https://user:pw@other.test:9/x", "other.test:9"),
        ("http://api.test", "", "api.test"),
        (None, "http://h.test?q=1", "h.test"),
    ],
)
def test_request_host_is_the_urls_own(base: str | None, url: str, host: str) -> None:
    """The host the per-host stages key on is the request URL's, base or not."""
    request = _client(base).build_request("GET", url)
    assert request.host == host
    request.url = "http://moved.test/x"  # a plugin rewrote the URL: the host follows it
    assert request.host == "moved.test"


def test_a_request_header_change_does_not_reach_the_next_request() -> None:
    """Each request gets its own copy of the client's headers."""
    client = FlextApiClient("http://api.local", headers={"X-Team": "a"})
    first = client.build_request("GET", "/items")
    first.headers.set("X-Team", "b")
    first.headers.add("X-Extra", "1")
    second = client.build_request("GET", "/items")
    assert second.headers["X-Team"] == "a"
    assert "X-Extra" not in second.headers


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout": -1}, "timeout= must be"),
        ({"timeout": float("nan")}, "timeout= must be"),
        ({"timeout": "5"}, "timeout= must be"),
        ({"timeout": float("inf")}, "timeout= must be"),
        ({"files": {"f": 5}}, "files= entry 'f'"),
        ({"files": {"f": ("name.txt", object())}}, "files= entry 'f'"),
        # str() of these would reach the server as if it were data ("b'x'", "{'b': 1}").
        ({"params": {"a": object()}}, "value of 'a' must be str, int, float, bool or None"),
        ({"params": {"a": {"b": 1}}}, "got dict"),
        ({"params": {"a": b"x"}}, "got bytes"),
        ({"params": [("a", [1, b"x"])]}, "got bytes"),
        ({"params": {1: "a"}}, "parameter names must be str"),
        ({"data": {"a": {"b": 1}}}, "got dict"),
        ({"data": {"a": None, "b": object()}, "files": {"f": b"x"}}, "value of 'b'"),
        # A misspelt or unsupported option was dropped without a word.
        ({"param": {"a": 1}}, "unknown request option(s): param"),
        ({"cookies": {"a": "b"}, "verify": False}, "unknown request option(s): cookies, verify"),
        # JSON has no NaN or infinity; orjson would send null.
        ({"json": {"v": float("nan")}}, "NaN or an infinity"),
        ({"json": [1.0, [float("-inf")]]}, "NaN or an infinity"),
        # bytes(5) sent five NUL bytes, bytes(True) one.
        ({"data": 5}, "data= must be a mapping, str or bytes, got int"),
        ({"data": True}, "got bool"),
        ({"content": "caf\ud800"}, "content= holds a character that is not valid Unicode"),
        ({"data": "caf\ud800"}, "data= holds a character that is not valid Unicode"),
        ({"files": {"f": ("n",)}}, "got a 1-tuple"),
        ({"files": {"f": (b"n", b"x")}}, "the filename must be str or None"),
        # A CR/LF in a part's content type would add header lines to the part.
        ({"files": {"f": ("n", b"x", "text/plain\r\nX-Injected: yes")}}, "control character"),
        ({"params": 5}, "params= must be a mapping or a sequence of (name, value) pairs"),
        ({"headers": [("X",)]}, "headers= must be a mapping or a sequence"),
        ({"idempotency_key": 5}, "idempotency_key= must be a str, True, False or None"),
        # A blank key made a POST replayable with nothing to deduplicate on.
        ({"idempotency_key": " "}, "idempotency_key= must not be blank"),
        ({"headers": {"X-Tag": "caf\u00e9"}}, "non-ASCII characters"),
        ({"headers": {"X-Tag": "a\ud800"}}, "non-ASCII characters"),
    ],
)
async def test_bad_per_request_options_are_a_failed_result(
    options: dict[str, Any], fragment: str
) -> None:
    """A bad timeout or file is INVALID_REQUEST in the result, not an exception (a
    pydantic ValidationError and an AttributeError escaped before)."""
    transport = MockTransport(_echo)
    async with FlextApiClient("http://h", transport=transport) as client:
        result = await client.post("/x", **options)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert fragment in (result.error or "")
    assert transport.requests == []


@pytest.mark.parametrize(
    ("url", "params"),
    [("/p\udcff", None), ("http://h/\ud800", None), ("p\ud800/q", None), ("/ok", {"a": "\ud800"})],
)
async def test_a_url_that_is_not_valid_unicode_is_a_failed_result(
    url: str, params: dict[str, str] | None
) -> None:
    """A lone surrogate cannot be percent-encoded: INVALID_REQUEST, not UnicodeEncodeError."""
    transport = MockTransport(_echo)
    async with FlextApiClient("http://h", transport=transport) as client:
        result = await client.get(url, params=params)
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "not valid Unicode" in str(result.error)
    assert transport.requests == []


def test_an_infinite_timeout_in_the_config_is_refused() -> None:
    """inf passed the > 0 check and failed every request later; None means no bound."""
    with pytest.raises(ValueError, match="finite"):
        TimeoutConfig(connect=float("inf"))
    assert TimeoutConfig(connect=None).connect is None


async def test_a_method_that_is_not_a_str_is_a_failed_result() -> None:
    """method=None raised AttributeError out of request()."""
    transport = MockTransport(_echo)
    async with FlextApiClient("http://h", transport=transport) as client:
        result = await client.request(None, "/x")  # type: ignore[arg-type]
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "must be a str, got NoneType" in (result.error or "")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_url": ClientConfig()}, r"pass the settings as config=ClientConfig"),
        ({"base_url": b"http://h"}, r"base_url must be a str URL, got bytes"),
        ({"config": {"base_url": "http://h"}}, r"config= takes a ClientConfig, got dict"),
        ({"plugins": "retry"}, r"plugins= takes a list of plugins, got str"),
        ({"plugins": [object()]}, r"plugins= holds <object"),
        ({"plugins": (p for p in [1])}, r"plugins= holds 1"),
        ({"auth": "token"}, r"auth= takes an auth plugin .*got str"),
        ({"clock": 5}, r"clock= takes a Clock"),
        ({"ssl_context": "x"}, r"ssl_context= takes an ssl.SSLContext, got str"),
        ({"registry": "x"}, r"registry= takes a ServiceRegistry, got str"),
    ],
    ids=["config-as-base-url", "bytes-url", "dict-config", "str-plugins", "object-plugin",
         "generator-plugin", "str-auth", "int-clock", "str-ssl", "str-registry"],
)  # fmt: skip
def test_an_argument_of_the_wrong_type_is_a_config_error(
    arguments: dict[str, Any], message: str
) -> None:
    """Each names the argument and what it takes. They failed later: an AttributeError
    at construction (config, clock, registry), a TypeError (base_url, plugins, auth) or an
    UNEXPECTED_ERROR at the first request (ssl_context)."""
    with pytest.raises(ConfigError, match=message):
        FlextApiClient(**arguments)


def test_framing_headers_cannot_be_client_defaults() -> None:
    """A default Content-Length or Transfer-Encoding would contradict most bodies."""
    for name in ("Content-Length", "transfer-encoding"):
        with pytest.raises(ConfigError, match="cannot be a default header"):
            FlextApiClient("http://h", headers={name: "0"})


async def test_a_content_length_equal_to_the_body_is_kept() -> None:
    """A caller's Content-Length that says the body's size is sent as it is."""
    transport = MockTransport(_echo)
    async with FlextApiClient("http://h", transport=transport) as client:
        result = await client.post("/x", content=b"abc", headers={"Content-Length": "3"})
    assert result.is_success
    assert transport.requests[0].headers.get_list("content-length") == ["3"]


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        # The host is checked as given, never percent-encoded into another name.
        (
            "http://b\u00fccher.example/\u00e4 b?q=\u00fc",
            "http://xn--bcher-kva.example/%C3%A4%20b?q=%C3%BC",
        ),
        (
            "http://u:p ss@B\u00fccher.Example:8080/x",
            "http://u:p%20ss@xn--bcher-kva.example:8080/x",
        ),
    ],
)
async def test_absolute_urls_encode_the_path_and_idna_the_host(url: str, sent: str) -> None:
    """An internationalised host is sent in IDNA form (as a base URL's is); the rest of
    the URL is percent-encoded."""
    transport = MockTransport(_echo)
    async with FlextApiClient(transport=transport) as client:
        assert (await client.get(url)).is_success
    assert transport.requests[0].url == sent


async def test_a_space_in_an_absolute_urls_host_is_refused() -> None:
    """It was percent-encoded into 'exa%20mple' and looked up in DNS, with retries."""
    transport = MockTransport(_echo)
    async with FlextApiClient(transport=transport) as client:
        result = await client.get("http://exa mple.invalid/")
    assert result.error_code is ErrorCode.INVALID_REQUEST
    assert "host contains invalid characters" in (result.error or "")
    assert transport.requests == []
