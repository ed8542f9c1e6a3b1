"""``FlextDictClient``: the blocking client of the FLEXT guides, answering with dicts.

``create_flext_api().flext_api_create_client({"base_url": ..., "timeout": 30})`` returns
``FlextResult[FlextDictClient]``. Its calls block and return ``FlextResult[ResponseDict]``:
``result.data`` is the response as a dict (``status_code``, ``headers``, ``data`` - the
decoded JSON or the text -, ``content``, ``url``, plus any ``_`` keys a dict-style plugin
set, such as ``_from_cache``), and ``result.data.response`` is the
:class:`~flext_api.HttpResponse` behind it. Everything else - pool, retries, breaker,
deadline - is :class:`~flext_api.FlextApiSyncClient`'s, which this class wraps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError

from .._config import ClientConfig, format_validation_error
from .._errors import ErrorCode, FlextApiError
from .._models import HttpResponse
from .._redact import DEFAULT_SENSITIVE_HEADERS, DEFAULT_SENSITIVE_QUERY_PARAMS, REDACTED
from .._result import FlextResult
from ._client import RequestOptions
from ._dict_hooks import response_view
from ._plugin import Plugin
from ._sync import FlextApiSyncClient

__all__ = ["FlextDictClient", "ResponseDict", "client_from_dict"]

_OPTION_KEYS = frozenset(RequestOptions.__annotations__)
# Shorter values would be scrubbed out of unrelated text ("1", "on").
_MIN_SECRET = 4


def _body(options: dict[str, Any], data: Any, json: Any) -> dict[str, Any]:
    """``options`` with the positional ``data``/``json`` of ``post`` (None: not given)."""
    if data is not None:
        options["data"] = data
    if json is not None:
        options["json"] = json
    return options


class ResponseDict(dict[str, Any]):
    """A response as the FLEXT guides read it; ``.response`` is the full :class:`HttpResponse`."""

    __slots__ = ("response",)

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response_view(response))
        self.response = response


class FlextDictClient:
    """Blocking client whose results hold :class:`ResponseDict` s (thread-safe).

    ``get(path, params)``, ``post(path, data, json)`` and the other verbs take the keyword
    options of :class:`~flext_api.FlextApiClient` (``params``, ``headers``, ``json``,
    ``timeout``...); an unknown option is an ``INVALID_REQUEST`` failure.
    """

    def __init__(self, client: FlextApiSyncClient) -> None:
        self.client = client

    def request(self, method: str, path: str, **options: Any) -> FlextResult[ResponseDict]:
        """Send ``method path``; blocks until the result is there."""
        unknown = sorted(set(options) - _OPTION_KEYS)
        if unknown:
            return FlextResult.fail(
                f"unknown request option(s) {unknown}; known: {sorted(_OPTION_KEYS)}",
                code=ErrorCode.INVALID_REQUEST,
            )
        result = self.client.request(method, path, **options)
        error = result.exception
        if error is not None:
            return FlextResult(error=error)
        return FlextResult(ResponseDict(result.value))

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, **options: Any
    ) -> FlextResult[ResponseDict]:
        """GET ``path`` (``params``: the query, also positional as in ``requests``)."""
        if params is not None:
            options["params"] = params  # checked by the client: a bad one is INVALID_REQUEST
        return self.request("GET", path, **options)

    def post(
        self, path: str, data: Any = None, json: Any = None, **options: Any
    ) -> FlextResult[ResponseDict]:
        """POST to ``path`` (``data``: a form or bytes; ``json``: a JSON body)."""
        return self.request("POST", path, **_body(options, data, json))

    def put(
        self, path: str, data: Any = None, json: Any = None, **options: Any
    ) -> FlextResult[ResponseDict]:
        """PUT to ``path`` (``data``/``json`` as for :meth:`post`)."""
        return self.request("PUT", path, **_body(options, data, json))

    def patch(
        self, path: str, data: Any = None, json: Any = None, **options: Any
    ) -> FlextResult[ResponseDict]:
        """PATCH ``path`` (``data``/``json`` as for :meth:`post`)."""
        return self.request("PATCH", path, **_body(options, data, json))

    def delete(self, path: str, **options: Any) -> FlextResult[ResponseDict]:
        """DELETE ``path``."""
        return self.request("DELETE", path, **options)

    def close(self) -> None:
        """Close the pool and the client's event loop thread; idempotent."""
        self.client.close()

    def __enter__(self) -> FlextDictClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.client).replace("FlextApiSyncClient", "FlextDictClient", 1)


def client_from_dict(
    settings: Mapping[str, Any],
    plugins: Sequence[Plugin] | None = None,
    *,
    base: ClientConfig | None = None,
) -> FlextResult[FlextDictClient]:
    """A :class:`FlextDictClient` from a FLEXT settings dict (``base_url``, ``timeout``...).

    Every key is a :class:`~flext_api.ClientConfig` field (``timeout`` in seconds bounds
    each phase). An unknown key or a bad value is a
    ``CONFIG_ERROR`` failure naming it.
    """
    if not isinstance(settings, Mapping):  # untyped callers
        return FlextResult.fail(  # type: ignore[unreachable]
            f"client settings must be a dict, got {type(settings).__name__}",
            code=ErrorCode.CONFIG_ERROR,
        )
    fields = dict(settings)
    # repr-sorted: a dict from untyped code may mix key types ({1: ..., "x": ...}).
    unknown = sorted((set(fields) - set(ClientConfig.model_fields)), key=repr)
    if unknown:
        return FlextResult.fail(f"unknown client setting(s) {unknown}", code=ErrorCode.CONFIG_ERROR)
    start = (base or ClientConfig()).model_dump(exclude_unset=True)
    try:
        config = ClientConfig.model_validate({**start, **fields})
    except ValidationError as exc:
        message = _scrub(format_validation_error(exc), fields)
        return FlextResult.fail(message, code=ErrorCode.CONFIG_ERROR)
    try:
        client = FlextApiSyncClient(config=config, plugins=list(plugins or []))
    except FlextApiError as exc:
        raw = f"invalid client settings: {exc.message}"
        message = _scrub(raw, fields)
        # The original is chained only when it holds no secret of the settings.
        cause = exc if message == raw else None
        return FlextResult.fail(message, code=ErrorCode.CONFIG_ERROR, exception=cause)
    return FlextResult(FlextDictClient(client))


def _secret_values(fields: Mapping[Any, Any]) -> list[str]:
    """The secret values a settings dict carries (sensitive headers, URL credentials)."""
    found: set[str] = set()

    def add(value: Any) -> None:
        for text in (str(value), str(value).partition(" ")[2]):
            for form in (text, repr(text)[1:-1]):
                found.update((form, form.strip()))

    headers = fields.get("headers")
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if str(name).lower() in DEFAULT_SENSITIVE_HEADERS:
                for item in value if isinstance(value, list | tuple | set) else (value,):
                    add(item)
    url = fields.get("base_url")
    if isinstance(url, str):
        netloc = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
        userinfo, at, _ = netloc.rpartition("@")
        if at:
            for part in (userinfo, *userinfo.split(":", 1)):
                add(part)
        query = url.partition("?")[2].partition("#")[0]
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name.lower() in DEFAULT_SENSITIVE_QUERY_PARAMS:
                add(value)
    return sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True)


def _scrub(message: str, fields: Mapping[Any, Any]) -> str:
    """``message`` without the secret values of ``fields`` (errors echo bad values)."""
    for secret in _secret_values(fields):
        message = message.replace(secret, REDACTED)
    return message
