"""OAuth2 client-credentials authentication (RFC 6749 §4.4) with a shared, cached token.

Rules, each with a test:

* **Single flight.** All callers that need a token while none is valid wait for one
  token request (one task per event loop; callers await it through ``asyncio.shield``,
  so a caller that gives up does not cancel the fetch for the others). A refusal is
  shared too: 50 concurrent callers against a failing endpoint cause one request, not 50.
* **Expiry.** The token is kept until ``expires_in - leeway`` on the injected clock,
  counted from when the token request was sent (never less than half its lifetime);
  without ``expires_in`` it is kept until the API answers 401.
* **401.** The API refusing the token drops it, fetches a new one (still single-flight:
  concurrent 401s share one refresh) and replays the request once; a request whose body
  is a one-shot stream cannot be replayed and returns the 401 as it is, and so does a
  401 from another origin a redirect led to (it never saw the token), or from the
  same origin reached back through another one (the token was dropped on the way).
* **Deadline.** A caller waits for the token no longer than its call's deadline
  (``DEADLINE_EXCEEDED``); the fetch goes on for the others. When a client closes, the
  fetch is cancelled only if no other open client shares the plugin.
* **Redirects.** Token requests do not follow them: a 3xx is ``AUTH_ERROR`` (a 307
  would carry the form, secret included, to the other origin).
* **Errors.** A refusing or unreachable token endpoint is ``AUTH_ERROR`` naming the
  endpoint, the client ID, the status and the OAuth ``error``/``error_description``.
  The secret is never in a message, a log or a ``repr``, and the failed token request
  (whose headers hold the secret) is not attached to the error.

The client secret is sent with HTTP Basic, both parts form-urlencoded first (RFC 6749
§2.3.1), or in the form body with ``auth_method="body"``. Without ``client=``, each
token request uses a short-lived ``FlextApiClient(default_plugins=False)`` opened and
closed around it: tokens are fetched rarely (once per lifetime), and owning no
long-lived connection means nothing to leak when the plugin is never cleaned up, and
nothing bound to one event loop.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Literal
from urllib.parse import urlsplit

import structlog

from ..._clock import Clock
from ..._config import TimeoutConfig
from ..._errors import AuthError, ErrorCode, FlextApiError
from ..._models import HttpRequest, HttpResponse
from ..._numbers import is_real
from ..._redact import redact_url
from ..._result import FlextResult
from .._client import FlextApiClient
from .._plugin import CallNext, FlextApiPlugin
from .._request import same_origin
from ._base import check_credential, with_header
from ._oauth2_token import AccessToken, basic_credentials, parse_token_response, token_error

__all__ = ["OAuth2ClientCredentials"]

_log = structlog.get_logger("flext_api.client.auth")

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_RE = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
_RESERVED_PARAMS = frozenset({"grant_type", "scope", "client_id", "client_secret"})

Flight = asyncio.Task[FlextResult[AccessToken]]


def _scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    items: tuple[object, ...] = tuple(scopes.split()) if isinstance(scopes, str) else tuple(scopes)
    checked: list[str] = []
    for scope in items:
        if not isinstance(scope, str) or not _SCOPE_RE.match(scope):
            raise ValueError(f"invalid OAuth2 scope {scope!r} (RFC 6749 §3.3)")
        checked.append(scope)
    return tuple(checked)


def _response_of(result: FlextResult[HttpResponse]) -> HttpResponse | None:
    error = result.exception
    return result.value if error is None else error.response


class OAuth2ClientCredentials(FlextApiPlugin):
    """Bearer tokens from an OAuth2 token endpoint, fetched once and shared.

    >>> auth = OAuth2ClientCredentials("https://idp.example/token", "svc", "s3cret")
    >>> auth                                            # doctest: +NORMALIZE_WHITESPACE
    <OAuth2ClientCredentials token_url='https://idp.example/token' client_id='svc'
     client_secret=[REDACTED] token=none>

    Args:
        token_url: the token endpoint (absolute http/https URL).
        client_id / client_secret: the client's credentials.
        scopes: scopes to ask for (a space-separated string or an iterable).
        client: the client that sends token requests (never closed here); default: a
            fresh ``FlextApiClient(default_plugins=False)`` per token request.
        leeway: seconds before ``expires_in`` at which a token is renewed.
        clock: injectable clock for expiry (``FakeClock`` in tests).
        auth_method: ``"basic"`` (default, RFC 6749 §2.3.1) or ``"body"``.
        extra_params: more form fields for the token request (``audience``...).
        timeout: seconds for a whole token request made by the default client (connect,
            send, response and body together; a slower endpoint is a
            ``DEADLINE_EXCEEDED`` cause).
    """

    name = "oauth2"
    guarded = False  # built-in: the pipeline's shared guard reports its errors

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: str | Iterable[str] = (),
        *,
        client: FlextApiClient | None = None,
        leeway: float = 30.0,
        clock: Clock | None = None,
        auth_method: Literal["basic", "body"] = "basic",
        extra_params: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        url: object = token_url
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"token_url must be an absolute http(s) URL, got {token_url!r}")
        self.token_url = token_url
        self.client_id = check_credential(client_id, "client_id")
        self._secret = check_credential(client_secret, "client_secret")
        self.scopes = _scopes(scopes)
        if auth_method not in ("basic", "body"):
            raise ValueError(f"auth_method must be 'basic' or 'body', got {auth_method!r}")
        self.auth_method = auth_method
        extra = dict(extra_params or {})
        clash = sorted(_RESERVED_PARAMS & set(extra))
        if clash:
            raise ValueError(f"extra_params may not set {', '.join(clash)}")
        self._extra = extra
        for what, seconds in (("leeway", leeway), ("timeout", timeout)):
            if not is_real(seconds):
                raise TypeError(f"{what} must be a number of seconds, got {type(seconds).__name__}")
        # NaN passes a ``< 0`` check: a NaN leeway would make every token expire at once
        # (a token request per call), a NaN or infinite timeout fail every token request.
        if not leeway >= 0:
            raise ValueError(f"leeway must be >= 0 seconds, got {leeway!r}")
        if not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a finite number > 0 seconds, got {timeout!r}")
        self.leeway = float(leeway)
        self._timeout = float(timeout)
        self._client = client
        self._init_clock(clock)
        self._token: AccessToken | None = None
        self._flights: dict[asyncio.AbstractEventLoop, Flight] = {}
        # Clients opened with this plugin and not closed yet: one closing must not
        # cancel the token request that another one's callers are waiting for.
        self._open_clients = 0
        #: How many token requests this plugin has sent (for tests and dashboards).
        self.token_requests = 0

    # -- the token -------------------------------------------------------------------------
    def _form(self) -> tuple[dict[str, str], dict[str, str]]:
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        form.update(self._extra)
        headers = {"Accept": "application/json"}
        if self.auth_method == "basic":
            headers["Authorization"] = "Basic " + basic_credentials(self.client_id, self._secret)
        else:
            form["client_id"], form["client_secret"] = self.client_id, self._secret
        return form, headers

    async def _post(self) -> FlextResult[HttpResponse]:
        form, headers = self._form()
        if self._client is not None:
            return await self._send(self._client, form, headers)
        # Every phase, and the whole request (a body dripped one byte at a time passes
        # each phase's timeout), within the same seconds.
        seconds = self._timeout
        timeout = TimeoutConfig(
            connect=seconds, read=seconds, write=seconds, pool=seconds, total=seconds
        )
        async with FlextApiClient(default_plugins=False, timeout=timeout) as client:
            return await self._send(client, form, headers)

    async def _send(
        self, client: FlextApiClient, form: dict[str, str], headers: dict[str, str]
    ) -> FlextResult[HttpResponse]:
        # Redirects are not followed: a 307/308 keeps the form, which holds the secret
        # with auth_method="body", and would carry it to whatever origin the Location
        # names (only headers are dropped across origins); a token from a host the
        # caller never named is not one to trust either. A 3xx is an AUTH_ERROR.
        return await client.post(
            self.token_url,
            data=form,
            headers=headers,
            fail_on_http_error=False,
            follow_redirects=False,
        )

    async def _fetch(self) -> FlextResult[AccessToken]:
        started = self._clock.monotonic()
        self.token_requests += 1
        ctx = {"token_url": self.token_url, "client_id": self.client_id, "secret": self._secret}
        result = await self._post()
        cause = result.exception
        if cause is not None:
            # Not chained: the cause's request carries the client secret in its headers.
            error = token_error(
                f"{cause.code.value}: {cause.message}", **ctx, details={"cause": cause.code.value}
            )
            _log.warning("oauth2.token_failed", client_id=self.client_id, error=error.message)
            return FlextResult.fail(error)
        try:
            token = parse_token_response(result.value, now=started, leeway=self.leeway, **ctx)
        except AuthError as exc:
            _log.warning("oauth2.token_refused", client_id=self.client_id, error=exc.message)
            return FlextResult.fail(exc)
        self._token = token
        lifetime = None if token.expires_at is None else round(token.expires_at - started, 3)
        _log.debug("oauth2.token_fetched", client_id=self.client_id, renew_in=lifetime)
        return FlextResult.ok(token)

    def _landed(self, loop: asyncio.AbstractEventLoop, flight: Flight) -> None:
        if self._flights.get(loop) is flight:
            del self._flights[loop]

    async def token(self, *, stale: AccessToken | None = None) -> FlextResult[AccessToken]:
        """The cached token while usable, else a fresh one (one request for all callers).

        ``stale`` is a token the API just refused: it is not returned again.
        """
        return await self._token_before(None, stale=stale)

    async def _token_before(
        self, deadline: float | None, *, stale: AccessToken | None = None
    ) -> FlextResult[AccessToken]:
        """:meth:`token`, waiting for a fetch no longer than ``deadline`` (the call's).

        A caller whose deadline passes stops waiting with ``DEADLINE_EXCEEDED``; the
        fetch goes on for the others (and caches its token for the next call).
        """
        token = self._token
        if token is not None and token is not stale and token.usable(self._clock.monotonic()):
            return FlextResult.ok(token)
        loop = asyncio.get_running_loop()
        flight = self._flights.get(loop)
        if flight is None:
            flight = loop.create_task(self._fetch(), name="flext-api-oauth2-token")
            self._flights[loop] = flight
            flight.add_done_callback(partial(self._landed, loop))
        try:
            if deadline is not None and not flight.done():
                # What is left of the deadline on the client's clock, waited for on the
                # loop's timer: a FakeClock's sleep would jump its time at once. And
                # asyncio.wait never cancels what it waits for: the flight goes on.
                left = max(0.0, deadline - self._clock.monotonic())
                await asyncio.wait((flight,), timeout=left)
                if not flight.done():
                    return FlextResult.fail(
                        FlextApiError.from_code(
                            ErrorCode.DEADLINE_EXCEEDED,
                            f"the deadline passed while waiting for an OAuth2 token from "
                            f"{redact_url(self.token_url)} for client {self.client_id!r}",
                            details={"token_url": redact_url(self.token_url)},
                        )
                    )
            return await asyncio.shield(flight)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if flight.cancelled() and current is not None and not current.cancelling():
                # The fetch was cancelled by cleanup(), not this caller: a failure, not
                # a cancellation that would wrongly unwind the caller.
                return FlextResult.fail(
                    token_error(
                        "the token request was cancelled (the client is closing)",
                        token_url=self.token_url,
                        client_id=self.client_id,
                        secret=self._secret,
                    )
                )
            raise

    # -- the pipeline stage -----------------------------------------------------------------
    @staticmethod
    def _failed(
        result: FlextResult[AccessToken], request: HttpRequest
    ) -> FlextResult[HttpResponse]:
        shared = result.exception
        assert shared is not None
        # The error is shared by every waiter of the flight: give each caller its own.
        error = FlextApiError.from_code(
            shared.code, shared.message, request=request, details=dict(shared.details)
        )
        return FlextResult.fail(error)

    async def handle(self, request: HttpRequest, call_next: CallNext) -> FlextResult[HttpResponse]:
        """Send the attempt with the current token; on 401 refresh once and replay."""
        token = await self._token_before(request.deadline)
        if token.is_failure:
            return self._failed(token, request)
        used = token.value
        result = await call_next(with_header(request, "Authorization", f"Bearer {used.value}"))
        response = _response_of(result)
        if response is None or response.status_code != 401 or not request.is_replayable:
            return result
        if response.url and not same_origin(request.url, response.url):
            # A redirect led to another origin, which never saw the token (redirects
            # drop it): its 401 says nothing about the token, and refreshing on it
            # would let that host make us fetch a token per call.
            return result
        sent = response.request
        if sent is not None and sent.headers.get("authorization") != f"Bearer {used.value}":
            # The same origin, reached back through another one (A -> B -> A): the
            # token was dropped on the way, so this 401 does not refuse it either.
            return result
        _log.info("oauth2.token_rejected", client_id=self.client_id, replay=True)
        if self._token is used:
            # Dropped now, before any await: callers arriving during the refresh wait for
            # it instead of sending the refused token, and one that failed is not kept.
            self._token = None
        try:
            await response.aclose()
        except Exception as exc:  # noqa: BLE001 - logged; the pool reclaims the connection
            _log.warning("oauth2.close_failed", error=f"{type(exc).__name__}: {exc}")
        fresh = await self._token_before(request.deadline, stale=used)
        if fresh.is_failure:
            return self._failed(fresh, request)
        return await call_next(with_header(request, "Authorization", f"Bearer {fresh.value.value}"))

    async def initialize(self) -> None:
        """Count the client being opened (a plugin may be shared by several)."""
        self._open_clients += 1

    async def cleanup(self) -> None:
        """Cancel token requests still in flight when the last client using it closes."""
        self._open_clients = max(0, self._open_clients - 1)
        if self._open_clients:
            return  # another open client shares this plugin: its callers keep waiting
        loop = asyncio.get_running_loop()
        for owner, flight in list(self._flights.items()):
            if owner is loop:
                flight.cancel()
                await asyncio.gather(flight, return_exceptions=True)
            else:  # a flight of another client's loop (a shared plugin): stop it there
                owner.call_soon_threadsafe(flight.cancel)

    def __repr__(self) -> str:
        token = self._token
        if token is None:
            state = "none"
        else:
            state = "valid" if token.usable(self._clock.monotonic()) else "expired"
        return (
            f"<OAuth2ClientCredentials token_url={redact_url(self.token_url)!r} "
            f"client_id={self.client_id!r} client_secret=[REDACTED] token={state}>"
        )
