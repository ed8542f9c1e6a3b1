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

from pydantic import ValidationError

from .._config import ClientConfig, format_validation_error
from .._errors import ErrorCode, FlextApiError
from .._models import HttpResponse
from .._result import FlextResult
from ._client import RequestOptions
from ._dict_hooks import response_view
from ._plugin import Plugin
from ._sync import FlextApiSyncClient

__all__ = ["FlextDictClient", "ResponseDict", "client_from_dict"]

_OPTION_KEYS = frozenset(RequestOptions.__annotations__)


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
        if params:
            options["params"] = dict(params)
        return self.request("GET", path, **options)

    def post(
        self, path: str, data: Any = None, json: Any = None, **options: Any
    ) -> FlextResult[ResponseDict]:
        """POST to ``path`` (``data``: a form or bytes; ``json``: a JSON body)."""
        if data:
            options["data"] = data
        if json is not None:
            options["json"] = json
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> FlextResult[ResponseDict]:
        """PUT to ``path``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> FlextResult[ResponseDict]:
        """PATCH ``path``."""
        return self.request("PATCH", path, **options)

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
    unknown = sorted(set(fields) - set(ClientConfig.model_fields))
    if unknown:
        return FlextResult.fail(f"unknown client setting(s) {unknown}", code=ErrorCode.CONFIG_ERROR)
    start = (base or ClientConfig()).model_dump(exclude_unset=True)
    try:
        config = ClientConfig.model_validate({**start, **fields})
    except ValidationError as exc:
        return FlextResult.fail(format_validation_error(exc), code=ErrorCode.CONFIG_ERROR)
    try:
        client = FlextApiSyncClient(config=config, plugins=list(plugins or []))
    except FlextApiError as exc:
        return FlextResult.fail(
            f"invalid client settings: {exc.message}", code=ErrorCode.CONFIG_ERROR, exception=exc
        )
    return FlextResult(FlextDictClient(client))
