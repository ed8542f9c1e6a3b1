"""HttpResponse and Headers against hostile or odd input: charsets, BOMs, reprs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flext_api import Headers, HttpRequest, HttpResponse
from flext_api._errors import DecodeError

TEXT = "héllo\r\nwörld\n€ end"

# Charsets a server may name that cannot decode text with errors replaced: unknown,
# a bytes-to-bytes codec, codecs that refuse "replace" or non-ASCII input.
UNFIT_CHARSETS = ["bogus", "base64", "rot13", "zlib", "idna", "punycode", "undefined"]


def _response(body: bytes, charset: str, *, chunk: int | None = None) -> HttpResponse:
    headers = {"Content-Type": f"text/plain; charset={charset}"}
    if chunk is None:
        return HttpResponse(200, headers=headers, content=body)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), chunk):
            yield body[start : start + chunk]

    return HttpResponse(200, headers=headers, stream=chunks())


async def _lines(response: HttpResponse) -> list[str]:
    return [line async for line in response.aiter_lines()]


@pytest.mark.parametrize("charset", UNFIT_CHARSETS)
def test_text_with_an_unfit_charset_is_utf8(charset: str) -> None:
    """A charset that cannot decode text gives the body as utf-8, never a UnicodeError."""
    assert _response(TEXT.encode(), charset).text == TEXT


@pytest.mark.parametrize("charset", UNFIT_CHARSETS)
def test_json_with_an_unfit_charset_parses_or_raises_decode_error(charset: str) -> None:
    """json() reads such a body as utf-8: valid JSON parses, invalid is a DecodeError."""
    ctype = {"Content-Type": f"application/json; charset={charset}"}
    assert HttpResponse(200, headers=ctype, content='{"a": "é"}'.encode()).json() == {"a": "é"}
    with pytest.raises(DecodeError):
        HttpResponse(200, headers=ctype, content=b"\xff not json").json()


@pytest.mark.parametrize("charset", UNFIT_CHARSETS)
async def test_aiter_lines_with_an_unfit_charset_is_utf8(charset: str) -> None:
    """aiter_lines decodes such a body as utf-8, as text does, chunk by chunk."""
    response = _response(TEXT.encode(), charset, chunk=3)
    assert await _lines(response) == TEXT.splitlines()


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-16", TEXT.encode("utf-16-le")),  # no BOM: RFC 2781 allows it
        ("utf-16", TEXT.encode("utf-16")),
        ("utf-16", b"\xfe\xff" + TEXT.encode("utf-16-be")),
        ("utf-32", TEXT.encode("utf-32-le")),
        ("utf-32", b"\x00\x00\xfe\xff" + TEXT.encode("utf-32-be")),
        ("UTF_16", TEXT.encode("utf-16-le")),
    ],
    ids=["16-no-bom", "16-bom", "16-be-bom", "32-no-bom", "32-be-bom", "alias"],
)
@pytest.mark.parametrize("chunk", [1, 3, 4096])
async def test_aiter_lines_reads_utf16_and_utf32_as_text_does(
    charset: str, body: bytes, chunk: int
) -> None:
    """utf-16/utf-32 with or without a BOM give the lines of text, whatever the chunks."""
    assert _response(body, charset).text == TEXT
    assert await _lines(_response(body, charset, chunk=chunk)) == TEXT.splitlines()


@pytest.mark.parametrize(
    ("charset", "body"),
    [
        ("utf-16le", "\ufeff[1]".encode("utf-16-le")),
        ("utf-16be", "\ufeff[1]".encode("utf-16-be")),
        ("bogus", b"\xef\xbb\xbf[1]"),
    ],
)
def test_json_ignores_a_bom_whatever_the_charset(charset: str, body: bytes) -> None:
    """A BOM is ignored (RFC 8259 §8.1) on every path, not only for a utf-8 charset."""
    ctype = {"Content-Type": f"application/json; charset={charset}"}
    assert HttpResponse(200, headers=ctype, content=body).json() == [1]


def test_headers_repr_masks_credentials() -> None:
    """The repr of headers (tracebacks, error reports) never shows a credential."""
    headers = Headers(
        [
            ("Authorization", "Bearer tok-Zq8v-0001"),
            ("cookie", "sid=ck-Zq8v-0002"),
            ("X-API-Key", "key-Zq8v-0003"),
            ("Accept", "application/json"),
        ]
    )
    text = repr(headers)
    assert "Zq8v" not in text
    assert text == (
        "Headers([('Authorization', '[REDACTED]'), ('cookie', '[REDACTED]'), "
        "('X-API-Key', '[REDACTED]'), ('Accept', 'application/json')])"
    )
    assert headers["authorization"] == "Bearer tok-Zq8v-0001"  # only the repr is masked


def test_a_request_repr_with_its_headers_shows_no_secret() -> None:
    """Neither a request's repr nor its headers' repr carries its URL or header secrets."""
    request = HttpRequest(
        "GET",
        "https://u:pw-Zq8v@api.test/p?token=tk-Zq8v",
        headers={"Proxy-Authorization": "Basic Zq8v"},
    )
    assert "Zq8v" not in repr(request) + repr(request.headers)


def test_json_error_does_not_quote_the_body() -> None:
    """A body that is not JSON is often a credential in another form (a token endpoint
    answering ``access_token=...`` form-encoded): the DecodeError, which ends up in logs
    and FlextResult errors, says what it got without quoting it."""
    body = b"access_token=gho_s3cr3tT0ken&scope=repo&token_type=bearer"
    response = HttpResponse(
        200, headers={"Content-Type": "application/x-www-form-urlencoded"}, content=body
    )
    with pytest.raises(DecodeError) as info:
        response.json()
    message = str(info.value)
    assert "gho_s3cr3tT0ken" not in message
    assert "access_token" not in message
    assert "not valid JSON" in message
    assert f"{len(body)} bytes" in message
    assert "application/x-www-form-urlencoded" in message
    assert info.value.response is response  # the body stays readable there
