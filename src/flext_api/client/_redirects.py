"""Following redirects in the client, the same way for every transport.

Transports never follow redirects; this loop does, innermost in the pipeline, so a
retry covers the whole chain. Credentials are dropped whenever the next hop is another
origin: ``Authorization``, ``Proxy-Authorization``, ``Cookie``, the other headers that
never reach a log (``X-API-Key``, ``X-Auth-Token``...) and every header an auth plugin
marked as secret (``ApiKeyAuth(header="X-Token")``); 303 (and 301/302 after
a POST) turn into a body-less GET, as browsers and httpx do; a one-shot streamed body is
never replayed. A space or a non-ASCII octet in ``Location`` is percent-encoded, octet
for octet (the transports hand header values over one character per octet, ISO-8859-1:
a UTF-8 ``café`` goes out as ``caf%C3%A9``, a Latin-1 one as ``caf%E9``; a character
past U+00FF, which only an in-process transport can give, as its UTF-8), as
``build_url`` does for a caller's URL: aiohttp and H1Transport wrote them raw into the
request line (``GET /a b HTTP/1.1``) or dropped them, httpx2 and pyreqwest encoded them.
A ``Location`` whose authority holds a backslash is refused (``INVALID_REQUEST``): the
origin check reads ``http://evil\\@api/`` as host ``api`` (RFC 3986) while a WHATWG
parser (pyreqwest's) connects to ``evil``, which would then receive the credentials.
A ``Location`` naming user info (``http://user:pass@host/``) is refused too, unless it
is the caller's own on the same origin: the transports would send it as
``Authorization: Basic``, credentials of the server's choosing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from .._errors import ErrorCode, FlextApiError
from .._models import HttpRequest, HttpResponse
from .._redact import DEFAULT_SENSITIVE_HEADERS
from ._request import header_url, redirect_url, same_origin
from ._sensitive import SENSITIVE_EXTENSION, SensitiveNames

__all__ = ["follow_redirects"]

_CREDENTIALS = DEFAULT_SENSITIVE_HEADERS
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding")


def _encoded_location(location: str, request: HttpRequest) -> str:
    """``location`` percent-encoded as :func:`header_url` does."""
    try:
        return header_url(location)
    except UnicodeEncodeError as exc:  # a lone surrogate no transport would produce
        raise FlextApiError.from_code(
            ErrorCode.INVALID_REQUEST,
            f"redirect Location holds a character that is not valid Unicode text: "
            f"{location.strip()[:200]!r}",
            request=request,
        ) from exc


Send = Callable[[HttpRequest], Awaitable[HttpResponse]]


def _refuse_ambiguous_authority(url: str, request: HttpRequest, response: HttpResponse) -> None:
    """Refuse a redirect target whose authority holds a backslash.

    RFC 3986 parsers (``urlsplit``, on which :func:`same_origin` rests) read it as part
    of the userinfo, WHATWG ones as the end of the host: ``http://evil\\@api/`` is
    ``api`` to the origin check and ``evil`` to pyreqwest, so the credentials kept for a
    "same-origin" hop would go to ``evil``. aiohttp and H1Transport refuse such a URL;
    refusing it here makes every transport agree. The URL is not shown: its userinfo
    may hold a secret.
    """
    rest = url.partition("://")[2]
    end = len(rest)
    for delimiter in "/?#":
        at = rest.find(delimiter)
        if 0 <= at < end:
            end = at
    if "\\" in rest[:end]:
        raise FlextApiError.from_code(
            ErrorCode.INVALID_REQUEST,
            f"redirect from {request.method} {request.host} refused: the Location's "
            "authority holds a backslash, which URL parsers read as different hosts",
            request=request,
            response=response,
        )


def _refuse_server_userinfo(url: str, request: HttpRequest, response: HttpResponse) -> None:
    """Refuse a redirect target whose user info the server chose.

    The transports turn a URL's user info into ``Authorization: Basic``: a server
    naming credentials in ``Location`` would have them sent, to another origin too,
    or clash with the caller's own ``Authorization`` (aiohttp fails, others replace
    it). Only the caller's own user info, on the same origin, may stay (a relative
    ``Location`` keeps it). The URL is not shown: its user info may hold a secret.
    """
    target, current = urlsplit(url), urlsplit(request.url)
    named = (target.username or None, target.password or None)
    if named == (None, None):
        return  # an "@" in the query, or an empty user info: nothing to send
    if same_origin(request.url, url) and named == (current.username, current.password):
        return
    raise FlextApiError.from_code(
        ErrorCode.INVALID_REQUEST,
        f"redirect from {request.method} {request.host} refused: the Location names "
        "credentials (user info), which are never sent on a server's say-so",
        request=request,
        response=response,
    )


def _next_request(request: HttpRequest, response: HttpResponse) -> HttpRequest:
    url = redirect_url(request.url, _encoded_location(response.headers["location"], request))
    if "\\" in url:  # rare: the check costs nothing on an ordinary redirect
        _refuse_ambiguous_authority(url, request, response)
    if "@" in url:  # rare: the check costs nothing on an ordinary redirect
        _refuse_server_userinfo(url, request, response)
    method = request.method
    status = response.status_code
    drop_body = False
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, drop_body = "GET", True
    if not drop_body and request.stream is not None:
        raise FlextApiError.from_code(
            ErrorCode.INVALID_REQUEST,
            f"cannot follow a {status} redirect: the streamed request body cannot be replayed",
            request=request,
            response=response,
        )
    nxt = request.copy()
    nxt.method, nxt.url = method, url
    nxt.headers.remove("host")
    if drop_body:
        nxt.content, nxt.stream = None, None
        for name in _BODY_HEADERS:
            nxt.headers.remove(name)
    if not same_origin(request.url, url):
        marked = request.extensions.get(SENSITIVE_EXTENSION)
        secret = marked.headers if isinstance(marked, SensitiveNames) else ()
        for name in (*_CREDENTIALS, *secret):
            nxt.headers.remove(name)
    return nxt


async def follow_redirects(
    send: Send,
    request: HttpRequest,
    response: HttpResponse,
    *,
    max_redirects: int,
    streaming: bool,
) -> HttpResponse:
    """Follow ``response``'s redirects up to ``max_redirects`` hops; return the last one."""
    hops = 0
    while response.is_redirect:
        if hops >= max_redirects:
            if streaming:
                await response.aclose()
            raise FlextApiError.from_code(
                ErrorCode.TOO_MANY_REDIRECTS,
                f"more than {max_redirects} redirects starting at {request.method} {request.host}",
                request=request,
                response=response,
            )
        try:
            request = _next_request(request, response)
        finally:
            if streaming:
                await response.aclose()
        response = await send(request)
        hops += 1
    return response
