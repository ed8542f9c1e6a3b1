"""Bearer, API-key and Basic authentication: one header (or query parameter) per attempt.

Each is a :class:`FlextApiPlugin` to pass as ``FlextApiClient(auth=...)``. Secrets are
checked once at construction (a CR/LF in a token is a programmer error, reported
without showing the token) and never appear in ``repr``. A bearer token may come from
a provider, sync or async, called for every attempt, so a rotated token is picked up by
the next retry; a provider that fails yields an ``AUTH_ERROR`` result naming only the
exception's type, and an async one still pending at the call's deadline a
``DEADLINE_EXCEEDED``. A credential sent in a header must be ASCII (transports disagree
on other characters); in Basic credentials or a query parameter it is encoded.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from ..._errors import AuthError, ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._result import FlextResult
from .._plugin import CallNext, FlextApiPlugin
from ._base import check_credential, check_header_credential, mark_sensitive, with_header

__all__ = ["ApiKeyAuth", "BasicAuth", "BearerAuth", "TokenProvider"]

#: A callable returning the current bearer token, or an awaitable of it.
TokenProvider: TypeAlias = Callable[[], "str | Awaitable[str]"]


class _ProviderLate(Exception):
    """The bearer token provider did not answer before the call's deadline."""


_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REDACTED = "[REDACTED]"


class BearerAuth(FlextApiPlugin):
    """``Authorization: Bearer <token>`` on every attempt.

    >>> BearerAuth("abc")                        # a fixed token
    <BearerAuth token=[REDACTED]>
    >>> BearerAuth(lambda: "abc")                # doctest: +ELLIPSIS
    <BearerAuth provider=<lambda>>

    Args:
        token: the token, or a provider (sync or async callable) asked on each attempt.
    """

    name = "bearer_auth"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(self, token: str | TokenProvider) -> None:
        if isinstance(token, str):
            self._token: str | None = check_header_credential(token, "bearer token")
            self._provider: TokenProvider | None = None
        elif callable(token):
            self._token, self._provider = None, token
        else:
            raise TypeError(f"token must be a str or a callable, got {type(token).__name__}")

    async def _current_token(self, request: HttpRequest) -> FlextResult[str]:
        if self._token is not None:
            return FlextResult.ok(self._token)
        assert self._provider is not None
        try:
            out: Any = self._provider()
            if inspect.isawaitable(out):
                out = await self._before_deadline(out, request)
        except _ProviderLate:
            return FlextResult.fail(
                FlextApiError.from_code(
                    ErrorCode.DEADLINE_EXCEEDED,
                    "the deadline passed while waiting for the bearer token provider",
                    request=request,
                )
            )
        except FlextApiError as exc:
            return FlextResult.fail(exc)  # the provider chose its error
        except Exception as exc:  # noqa: BLE001 - reported as AUTH_ERROR, cause chained
            # The provider's message may quote the token (a ValueError too): keep only
            # the type in the text.
            err = AuthError(f"bearer token provider raised {type(exc).__name__}", request=request)
            err.__cause__ = exc
            return FlextResult.fail(err)
        try:
            return FlextResult.ok(check_header_credential(out, "bearer token from the provider"))
        except (TypeError, ValueError) as exc:  # our own check: it never shows the value
            return FlextResult.fail(AuthError(str(exc), request=request))

    async def _before_deadline(self, pending: Awaitable[Any], request: HttpRequest) -> Any:
        """What the provider's awaitable gives, waited for no longer than the call's
        deadline (on the client's clock; the wait itself on the loop's timer)."""
        if request.deadline is None:
            return await pending
        left = max(0.0, request.deadline - self._clock.monotonic())
        task = asyncio.ensure_future(pending)
        own = task is not pending  # a coroutine we wrapped; a caller's future is left alone
        try:
            done, _ = await asyncio.wait((task,), timeout=left)
        except asyncio.CancelledError:
            if own:
                task.cancel()
            raise
        if not done:
            if own:
                task.cancel()
            raise _ProviderLate
        return task.result()

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Send the attempt with the current bearer token."""
        token = await self._current_token(request)
        if token.is_failure:
            return FlextResult(error=token.exception)
        return await call_next(with_header(request, "Authorization", f"Bearer {token.value}"))

    def __repr__(self) -> str:
        if self._provider is not None:
            provider = getattr(self._provider, "__name__", type(self._provider).__name__)
            return f"<BearerAuth provider={provider}>"
        return f"<BearerAuth token={_REDACTED}>"


def _with_query_param(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` replacing any existing values of ``name``."""
    parts = urlsplit(url)
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.partition("=")[0]) != name
    ]
    kept.append(f"{quote(name, safe='')}={quote(value, safe='')}")
    return urlunsplit(parts._replace(query="&".join(kept)))


class ApiKeyAuth(FlextApiPlugin):
    """An API key in a header (``X-API-Key`` by default) or a query parameter.

    >>> ApiKeyAuth("k")
    <ApiKeyAuth header='X-API-Key' key=[REDACTED]>
    >>> ApiKeyAuth("k", query="api_key")
    <ApiKeyAuth query='api_key' key=[REDACTED]>

    A key in the query string ends up in server access logs and proxies; prefer the
    header when the API allows it. Either way the observability plugins mask it.
    """

    name = "api_key_auth"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(self, key: str, *, header: str | None = None, query: str | None = None) -> None:
        if header is not None and query is not None:
            raise ValueError("pass header= or query=, not both")
        # In a query parameter the key is percent-encoded (UTF-8); in a header it must
        # be ASCII to reach the server as the same bytes on every transport.
        check = check_credential if query is not None else check_header_credential
        self._key = check(key, "API key")
        self.header: str | None = None
        self.query: str | None = None
        if query is not None:
            query_obj: object = query  # checked at run time: callers may not be typed
            if not isinstance(query_obj, str) or not query_obj:
                raise ValueError("query= must be a non-empty parameter name")
            self.query = query
        else:
            name: object = "X-API-Key" if header is None else header
            if not isinstance(name, str) or not _TOKEN_RE.match(name):
                raise ValueError(f"header= must be a valid header name, got {name!r}")
            self.header = name

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Send the attempt with the key."""
        if self.header is not None:
            return await call_next(with_header(request, self.header, self._key))
        assert self.query is not None
        out = request.copy()
        out.url = _with_query_param(out.url, self.query, self._key)
        mark_sensitive(out, params=(self.query,))
        return await call_next(out)

    def __repr__(self) -> str:
        where = f"header={self.header!r}" if self.header is not None else f"query={self.query!r}"
        return f"<ApiKeyAuth {where} key={_REDACTED}>"


class BasicAuth(FlextApiPlugin):
    """HTTP Basic authentication (RFC 7617), UTF-8 encoded.

    >>> BasicAuth("alice", "wonderland")
    <BasicAuth username='alice' password=[REDACTED]>
    """

    name = "basic_auth"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(self, username: str, password: str) -> None:
        check_credential(username, "username")
        if ":" in username:
            raise ValueError("username must not contain ':' (RFC 7617 §2)")
        if not isinstance(password, str):
            raise TypeError(f"password must be str, got {type(password).__name__}")
        if password:
            check_credential(password, "password")
        self.username = username
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        self._header = f"Basic {token}"

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Send the attempt with the Basic credentials."""
        return await call_next(with_header(request, "Authorization", self._header))

    def __repr__(self) -> str:
        return f"<BasicAuth username={self.username!r} password={_REDACTED}>"
