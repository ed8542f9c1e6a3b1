"""``GraphQLClient``: GraphQL over flext-api's own HTTP client.

Why not ``gql``: a GraphQL request is an HTTP request, and flext-api's client already
brings auth, retries, the per-host breaker, deadlines and metrics; ``gql`` would bring a
second HTTP stack with none of them (DESIGN §4). ``bench/protocols.py`` measures this
client against ``gql``'s aiohttp transport.

Rules:

* ``query`` is retried like an idempotent request (a query has no side effects);
  ``mutate`` is retried only for failures where nothing was sent, unless an
  ``idempotency_key`` is given (then every attempt carries that key).
* A response with ``errors`` is a failed result with ``ErrorCode.GRAPHQL_ERROR``; the
  :class:`GraphQLError` keeps the partial ``data``, the ``errors`` and their ``paths``.
  A GraphQL-over-HTTP error status with a GraphQL body is reported the same way; one
  with ``data`` but no ``errors`` is ``HTTP_STATUS`` (data comes with a 2xx).
* A body that is not a GraphQL result is ``DECODE_ERROR``: no ``data`` and no
  ``errors``, ``data`` that is not an object, and ``data: null`` without ``errors`` (the
  spec says null data comes from an error, which must then be listed).
* Automatic persisted queries (``persisted_queries=True``, Apollo's protocol): the first
  request sends the SHA-256 of the document only; on ``PersistedQueryNotFound`` it is
  sent again with the document, and the server remembers it. A server without APQ —
  one answering ``PersistedQueryNotSupported`` or 400 to a request with no document,
  as strawberry does — gets the full document at once, and from then on this client
  sends full documents only (as Apollo's client does).
* Subscriptions: :meth:`GraphQLClient.subscribe` speaks ``graphql-transport-ws`` over
  :meth:`FlextApiClient.websocket` (see :mod:`._graphql_ws`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from .._errors import ErrorCode, FlextApiError
from .._models import HttpResponse
from .._result import FlextResult

if TYPE_CHECKING:
    from ..client._client import FlextApiClient

__all__ = ["GraphQLClient", "GraphQLError"]

_NOT_FOUND = frozenset({"PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND"})
_NOT_SUPPORTED = frozenset({"PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED"})


class GraphQLError(FlextApiError):
    """The server answered with GraphQL ``errors``.

    Attributes:
        errors: the ``errors`` list as the server sent it.
        data: the partial ``data`` (None when the whole operation failed).
        paths: the ``path`` of each error that has one.
    """

    default_code = ErrorCode.GRAPHQL_ERROR

    def __init__(
        self,
        errors: list[dict[str, Any]],
        data: dict[str, Any] | None,
        *,
        response: HttpResponse | None = None,
    ) -> None:
        messages = "; ".join(str(e.get("message", e)) for e in errors[:3])
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        paths = [list(e["path"]) for e in errors if isinstance(e.get("path"), list)]
        super().__init__(
            f"GraphQL errors: {messages}{more}",
            request=None if response is None else response.request,
            response=response,
            details={"errors": errors, "data": data, "paths": paths},
        )
        self.errors = errors
        self.data = data
        self.paths = paths


class GraphQLClient:
    """GraphQL queries, mutations and subscriptions through a :class:`FlextApiClient`.

    >>> async with FlextApiClient("http://127.0.0.1:8000") as http:   # doctest: +SKIP
    ...     gql = GraphQLClient(http, "/graphql")
    ...     result = await gql.query("query($id: Int!) { user(id: $id) { name } }",
    ...                              {"id": 1})
    ...     name = result.map(lambda data: data["user"]["name"]).unwrap_or("?")

    Args:
        client: the HTTP client (its auth, retries, breaker and metrics apply).
        endpoint: the GraphQL URL, relative to the client's base URL or absolute.
        persisted_queries: use automatic persisted queries (hash first); turned off
            for this client once the server shows it has none (see the module doc).
        headers: sent with every operation (and on the subscription upgrade).
        schema: the server's schema as SDL; documents are then validated before they
            are sent (``INVALID_REQUEST`` listing the problems; needs ``graphql-core``,
            which the ``graphql`` extra brings).
    """

    def __init__(
        self,
        client: FlextApiClient,
        endpoint: str = "/graphql",
        *,
        persisted_queries: bool = False,
        headers: dict[str, str] | None = None,
        schema: str | None = None,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.persisted_queries = persisted_queries
        self._apq_unsupported = False  # the server showed it has no APQ
        self.headers = dict(headers or {})
        self._schema: Any = None
        if schema is not None:
            self._schema = _build_schema(schema)
        self._valid: dict[str, str | None] = {}

    async def query(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> FlextResult[dict[str, Any]]:
        """Run a query; the result holds ``data``. Retried as an idempotent request."""
        return await self.execute(
            query, variables, operation_name=operation_name, headers=headers, idempotent=True
        )

    async def mutate(
        self,
        mutation: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        headers: dict[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> FlextResult[dict[str, Any]]:
        """Run a mutation; not replayed after it may have reached the server, unless
        ``idempotency_key`` is given (sent as ``Idempotency-Key`` on every attempt)."""
        return await self.execute(
            mutation,
            variables,
            operation_name=operation_name,
            headers=headers,
            idempotent=False,
            idempotency_key=idempotency_key,
        )

    async def execute(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = False,
        idempotency_key: str | None = None,
    ) -> FlextResult[dict[str, Any]]:
        """Send one operation; see :meth:`query` and :meth:`mutate`."""
        problem = self.check(document, variables, operation_name)
        if problem is not None:
            return FlextResult.fail(problem, code=ErrorCode.INVALID_REQUEST)
        payload: dict[str, Any] = {"query": document}
        if variables:
            payload["variables"] = variables
        if operation_name:
            payload["operationName"] = operation_name
        options: dict[str, Any] = {
            "headers": {**self.headers, **(headers or {})},
            "fail_on_http_error": False,
        }
        if idempotent:
            options["extensions"] = {"idempotent": True}
        if idempotency_key is not None:
            options["idempotency_key"] = idempotency_key
        if self.persisted_queries and not self._apq_unsupported:
            digest = hashlib.sha256(document.encode()).hexdigest()
            extensions = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
            hashed = {k: v for k, v in payload.items() if k != "query"}
            hashed["extensions"] = extensions
            result = await self._post(hashed, options)
            verdict = _apq_verdict(result)
            if verdict is None:
                return result
            if verdict == "unsupported":
                # Nothing ran (there was no document); no point hashing again.
                self._apq_unsupported = True
            else:
                payload["extensions"] = extensions  # the server registers the document
        return await self._post(payload, options)

    async def _post(
        self, payload: dict[str, Any], options: dict[str, Any]
    ) -> FlextResult[dict[str, Any]]:
        result = await self.client.post(self.endpoint, json=payload, **options)
        if result.is_failure:
            return FlextResult(error=result.exception)
        return parse_response(result.value)

    def check(
        self, document: object, variables: object = None, operation_name: object = None
    ) -> str | None:
        """Why an operation cannot be sent (its ``INVALID_REQUEST`` message), or None."""
        if not isinstance(document, str) or not document.strip():
            return "a GraphQL document must be a non-empty string"
        try:
            document.encode()
        except UnicodeEncodeError as exc:
            return f"a GraphQL document must be valid Unicode text: {exc}"
        if variables is not None and not isinstance(variables, dict):
            return f"variables must be a dict, got {type(variables).__name__}"
        if operation_name is not None and not isinstance(operation_name, str):
            return f"operation_name must be a str, got {type(operation_name).__name__}"
        if self._schema is not None:
            return self._validate(document)
        return None

    def _validate(self, document: str) -> str | None:
        """Problems of ``document`` against the schema, or None (cached per document)."""
        if document in self._valid:
            return self._valid[document]
        from graphql import GraphQLError as CoreError
        from graphql import parse, validate

        try:
            errors = validate(self._schema, parse(document))
        except CoreError as exc:
            errors = [exc]
        problem = "; ".join(e.message for e in errors) or None
        if len(self._valid) < 1024:
            self._valid[document] = problem
        return None if problem is None else f"GraphQL document is invalid: {problem}"

    def subscribe(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_name: str | None = None,
    ) -> AsyncGenerator[FlextResult[dict[str, Any]], None]:
        """Subscribe over ``graphql-transport-ws``; yields one result per ``next``.

        >>> async for result in gql.subscribe("subscription { ticks }"):  # doctest: +SKIP
        ...     print(result.value)
        """
        from ._graphql_ws import subscribe

        return subscribe(self, query, variables, operation_name)

    def __repr__(self) -> str:
        apq = " persisted" if self.persisted_queries else ""
        if apq and self._apq_unsupported:
            apq += " (unsupported by the server)"
        return f"<GraphQLClient {self.endpoint}{apq} via {self.client!r}>"


def parse_response(response: HttpResponse) -> FlextResult[dict[str, Any]]:
    """Turn an HTTP response into ``data`` or a typed failure."""
    try:
        body = response.json()
    except FlextApiError as exc:
        if response.status_code >= 400:
            status_error = response.error_for_status()
            assert status_error is not None
            return FlextResult(error=status_error)
        return FlextResult(error=exc)
    return result_of(body, response)


def result_of(body: object, response: HttpResponse | None = None) -> FlextResult[dict[str, Any]]:
    """``data`` of a GraphQL result object, or a :class:`GraphQLError` / ``DECODE_ERROR``."""
    if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
        return _not_graphql("no data or errors", response)
    data = body.get("data")
    errors = body.get("errors")
    if data is not None and not isinstance(data, dict):
        return _not_graphql(f"data is a {type(data).__name__}, not an object", response)
    if errors:
        return FlextResult(error=GraphQLError(error_items(errors), data, response=response))
    if "data" not in body:
        return _not_graphql("empty errors and no data", response)
    if data is None:
        # Null data means an error reached the root, and such errors must be listed.
        return _not_graphql("data is null and there are no errors", response)
    if response is not None and response.status_code >= 400:
        # GraphQL over HTTP sends data with a 2xx: a failing status without errors is
        # the status's failure, never a result.
        return _not_graphql("data under an error status", response)
    return FlextResult.ok(data)


def _not_graphql(reason: str, response: HttpResponse | None) -> FlextResult[dict[str, Any]]:
    if response is not None and response.status_code >= 400:
        status_error = response.error_for_status()
        assert status_error is not None
        return FlextResult(error=status_error)
    return FlextResult.fail(f"not a GraphQL response ({reason})", code=ErrorCode.DECODE_ERROR)


def error_items(errors: object) -> list[dict[str, Any]]:
    """A GraphQL ``errors`` value as a list of objects (a lone entry or a string kept)."""
    listed = errors if isinstance(errors, list) else [errors]
    return [e if isinstance(e, dict) else {"message": str(e)} for e in listed]


def _apq_verdict(result: FlextResult[dict[str, Any]]) -> str | None:
    """What the answer to a hash-only request says about APQ: ``"not_found"`` (send
    the document to register it), ``"unsupported"`` (send documents only), or None
    (the answer stands)."""
    err = result.exception
    if err is None:
        return None
    if isinstance(err, GraphQLError):
        for item in err.errors:
            ext = item.get("extensions")
            code = ext.get("code") if isinstance(ext, dict) else None
            # Either may be any JSON value (a list is unhashable): only strings can match.
            texts = [v for v in (item.get("message"), code) if isinstance(v, str)]
            if any(v in _NOT_FOUND for v in texts):
                return "not_found"
            if any(v in _NOT_SUPPORTED for v in texts):
                return "unsupported"
    # A 400 to a request without a document is a server that wants the document
    # (strawberry: "No GraphQL query found"); Apollo's client reads it the same way.
    response = err.response
    if response is not None and response.status_code == 400:
        return "unsupported"
    return None


def _build_schema(sdl: str) -> Any:
    try:
        from graphql import GraphQLError as CoreError
        from graphql import build_schema
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"GraphQLClient(schema=...) needs the 'graphql' extra: "
            f"pip install 'flext-api[graphql]' ({exc})"
        ) from exc
    try:
        return build_schema(sdl)
    except (CoreError, TypeError) as exc:
        raise FlextApiError.from_code(
            ErrorCode.CONFIG_ERROR, f"GraphQLClient schema is not valid SDL: {exc}"
        ) from exc
