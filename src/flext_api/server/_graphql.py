"""GraphQL on the factory's app: ``create_fastapi_app(..., graphql=schema)``.

strawberry serves the schema (the product's original choice, DESIGN §4); this module
puts it behind what every other route of the factory has — the auth of ``ServerConfig``,
rate and body limits, request IDs, problem+json for HTTP-level refusals — and adds the
controls of the OWASP GraphQL cheat sheet, each on by default:

* **depth**: ``max_depth`` (strawberry's ``QueryDepthLimiter``; fragments are followed);
* **cost**: ``max_cost`` — each field costs 1, and a ``first``/``last``/``limit``
  argument multiplies the cost of the field's children, whether it is a literal or a
  variable (its value in the request, else its default; :class:`CostLimitRule`, ours:
  strawberry has no cost analysis); ``max_tokens`` and ``max_aliases`` bound the size
  of the document before it is validated at all;
* **introspection** off unless ``introspection=True`` (the IDE with it); while it is
  off, the request's errors lose graphql-core's "Did you mean ...?", which named the
  schema's fields, arguments, types and enum values one guess at a time;
* **batching** bounded: off unless ``max_batch`` > 1, then at most that many operations
  in one request;
* **GET** queries off (queries in URLs end up in logs and caches) unless ``allow_get``;
* **subscriptions over HTTP** refused (400), by POST and GET alike: they are served
  over WebSocket only (strawberry ran one sent by POST as a plain field);
* **one operation or a name**: a document of several operations sent without
  ``operationName`` is a request error, as the GraphQL spec says (strawberry ran the
  first, a mutation included);
* **rate limit**: the app's default limit (``rate_limit.default_limit``) counts each
  operation sent over a WebSocket (refused: the operation gets a ``RATE_LIMITED``
  error), as the request gate counts each HTTP request and each WebSocket handshake
  (it sees no traffic inside the socket).

Subscriptions are served over WebSocket (``graphql-transport-ws``, and the legacy
``graphql-ws``); the upgrade request goes through the same auth, and a socket a JWT
opened is closed with 4403 when the token expires (see :mod:`._ws_auth`). strawberry refuses an
upgrade from another origin (cross-site WebSocket hijacking) unless it is one of the
app's ``cors.allow_origins``. With ``introspection=True`` the GraphiQL page gets a
Content-Security-Policy allowing what it loads (the factory's ``default-src 'none'``
left it blank).

What the request itself gets wrong is an HTTP-level refusal, answered as problem+json
like every other route of the factory (strawberry answers these in plain text): a body
that is not JSON, not a JSON object (or, when batching, a list of them), nested too
deeply for the JSON parser (a 500 before), an operation whose ``query``/``variables``/
``operationName``/``extensions`` have the wrong type, a batch when batching is off, a
GET when ``allow_get`` is off. JSON Python cannot read (bytes that are not UTF-8, an
integer of more digits than Python converts) is refused like a syntax error (both were
500s). A WebSocket message nested too deeply is a non-JSON message (close 4400), not a
crash of the connection; so is a message that is JSON but not a protocol message (not
an object, an ``id`` that is not a string, a ``subscribe`` payload without a string
``query``): ``graphql-transport-ws`` closes with 4400 as its spec says, the legacy
``graphql-ws`` answers an ``error`` for an operation it can name and ignores the rest
(as it ignores non-JSON). strawberry let these raise out of the connection (an ASGI
crash, logged with its traceback) or sent Python's own error text to the client.

**Errors**: an exception raised by a resolver that is not a ``GraphQLError`` is sent as
"Unexpected error." (its message may hold internal names, SQL, paths) and logged with
its traceback through the app's logger; a :class:`~flext_api.FlextApiError` keeps the
message a REST route would show (a 4xx's message, a 5xx's generic sentence). Raise a
``GraphQLError`` for a message meant for the client.

The user's schema is not modified: the limits live on a shallow copy of it.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    VariableNode,
)
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from flext_api._context import get_request_id
from flext_api._errors import ConfigError, FlextApiError

from ._graphql_mount import GraphQLMount
from ._problem import public_detail, status_for_error
from ._ratelimit import TOO_MANY_REQUESTS_DETAIL, RateLimitService
from ._ws_auth import auth_configured, authenticate_connection

__all__ = ["CostLimitRule", "guarded_schema", "mount_graphql"]

_MULTIPLIERS = frozenset({"first", "last", "limit"})


class CostLimitRule(ValidationRule):
    """Refuse operations whose estimated cost exceeds the limit (see module docstring)."""

    max_cost = 1000
    variables: Mapping[str, Any] = {}  # read only; set per request

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            d.name.value: d
            for d in self.context.document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        # A page size given as a variable counts like a literal: its value in the
        # request, else its declared default (a variable used to cost nothing, so
        # ``users(first: $n)`` with n = 10**6 went through).
        values: dict[str, Any] = {}
        for definition in node.variable_definitions or ():
            name = definition.variable.name.value
            if name in self.variables:
                values[name] = self.variables[name]
            elif isinstance(definition.default_value, IntValueNode):
                values[name] = definition.default_value.value
        cost = _cost(node.selection_set, fragments, self.max_cost, frozenset(), values)
        if cost > self.max_cost:
            name = node.name.value if node.name else "anonymous"
            self.report_error(
                GraphQLError(
                    f"'{name}' has an estimated cost of at least {cost}, above the "
                    f"limit of {self.max_cost}.",
                    node,
                )
            )


def _factor(literal: object, budget: int) -> int:
    """A page size (literal text or a variable's value) as a multiplier, at most
    ``budget + 1`` (already over budget); anything not a whole number counts 1 (the
    Int type check refuses it).

    Capped before ``int()``: Python refuses to convert literals of thousands of digits,
    and a bigger factor would only make the refusal quote a bigger number.
    """
    if isinstance(literal, bool):
        return 1
    if isinstance(literal, float) and literal.is_integer():
        literal = int(literal)  # JSON 1e6 is a float; GraphQL's Int takes a whole one
    elif isinstance(literal, str):
        # ASCII digits only: str.isdigit() takes "²", which int() refuses.
        if not (literal.isascii() and literal.isdigit()):
            return 1
        if len(literal) > len(str(budget)):
            return budget + 1
        literal = int(literal)
    if isinstance(literal, int):
        return max(1, min(literal, budget + 1))
    return 1


def _cost(
    selections: SelectionSetNode | None,
    fragments: dict[str, Any],
    budget: int,
    seen: frozenset[str],
    variables: Mapping[str, Any],
) -> int:
    if selections is None:
        return 0
    total = 0
    for sel in selections.selections:
        if isinstance(sel, FieldNode):
            factor = 1
            for arg in sel.arguments or ():
                if arg.name.value not in _MULTIPLIERS:
                    continue
                if isinstance(arg.value, IntValueNode):
                    factor = _factor(arg.value.value, budget)
                elif isinstance(arg.value, VariableNode):
                    factor = _factor(variables.get(arg.value.name.value), budget)
            total += 1 + factor * _cost(sel.selection_set, fragments, budget, seen, variables)
        elif isinstance(sel, InlineFragmentNode):
            total += _cost(sel.selection_set, fragments, budget, seen, variables)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # cycles are another rule's error
                total += _cost(fragment.selection_set, fragments, budget, seen | {name}, variables)
        if total > budget:
            return total  # enough to refuse; stop counting
    return total


def _cost_rule(limit: int, variables: Mapping[str, Any]) -> type[ValidationRule]:
    return type("CostLimit", (CostLimitRule,), {"max_cost": limit, "variables": variables})


_UNEXPECTED = "Unexpected error."


def _public_message(error: GraphQLError) -> str | None:
    """The message to send instead of ``error``'s, or None to send it as it is."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return None  # the document's own errors, and errors raised for the client
    if isinstance(original, FlextApiError):
        message = public_detail(original, status_for_error(original))
        return None if message == error.message else message
    return _UNEXPECTED


# graphql-core's did_you_mean(): names of the schema (GraphQL names hold no "?").
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


def _suggests(error: GraphQLError) -> bool:
    """True when ``error`` is one of the request's own (parse, validation, variables: no
    ``path``) and graphql-core appended "Did you mean ...?" to it: names of the schema,
    which let a client map it field by field with introspection off (clairvoyance).
    An error raised while resolving a field (it has a path) is sent as raised."""
    return error.path is None and _SUGGESTION.search(error.message) is not None


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    return GraphQLError(
        _SUGGESTION.sub("", error.message),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


class _RateLimitedRule(ValidationRule):
    """Refuses the operation: its client is over the app's default rate limit."""

    retry_after = 0

    def enter_document(self, node: DocumentNode, *_: Any) -> None:
        extensions = {"code": "RATE_LIMITED", "retryAfter": self.retry_after}
        self.report_error(GraphQLError(TOO_MANY_REQUESTS_DETAIL, node, extensions=extensions))


class _OneOperationRule(ValidationRule):
    """Refuses a document of several operations sent without ``operationName``: the
    GraphQL spec makes that a request error (§6.1, GetOperation); strawberry ran the
    first of them, a mutation included."""

    def enter_document(self, node: DocumentNode, *_: Any) -> None:
        operations = [d for d in node.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1:
            self.report_error(
                GraphQLError(
                    "Must provide operation name if query contains multiple operations.",
                    operations,
                )
            )


async def _over_limit(limiter: RateLimitService, conn: HTTPConnection) -> int | None:
    """One hit of the app's default rate limit (which must be set) for ``conn``'s
    client: None when allowed, else the seconds to wait."""
    decision = await limiter.hit_default(conn.scope)
    return None if decision.allowed else decision.retry_after


def _extensions(mount: GraphQLMount, logger: Any, limiter: Any = None) -> list[Any]:
    """strawberry extensions applying the limits of ``mount`` (made per operation)."""
    from strawberry.extensions import (
        DisableIntrospection,
        MaskErrors,
        MaxAliasesLimiter,
        MaxTokensLimiter,
        QueryDepthLimiter,
        SchemaExtension,
    )

    # The rule of operations without variables, made once (a class per operation only
    # when there are variables to count).
    plain_rule = _cost_rule(mount.max_cost, {})

    class OperationRules(SchemaExtension):
        """The validation rules that depend on the operation: :class:`CostLimitRule` with
        its variables, and :class:`_OneOperationRule` when it came without
        ``operationName``."""

        def on_operation(self) -> Any:
            context = self.execution_context
            variables = context.variables
            cost = _cost_rule(mount.max_cost, variables) if variables else plain_rule
            rules = (*context.validation_rules, cost)
            # The name the request gave (strawberry's operation_name property falls back
            # to the first operation's). A strawberry without this attribute gets no
            # rule rather than a refusal of named operations.
            if getattr(context, "_provided_operation_name", "") is None:
                rules = (*rules, _OneOperationRule)
            context.validation_rules = rules
            yield

    class RateLimitWebSocketOperations(SchemaExtension):
        """Each operation sent over a WebSocket is one hit of the app's default rate
        limit, as it would be as an HTTP request: the request gate sees HTTP requests
        only, so a client refused with 429 over HTTP ran queries without any limit over
        ``graphql-transport-ws`` / ``graphql-ws``. Added only when the app has a
        default limit (otherwise it would run, for nothing, on every operation)."""

        async def on_operation(self) -> Any:
            context = self.execution_context.context
            websocket = context.get("websocket") if isinstance(context, dict) else None
            if websocket is not None:
                retry_after = await _over_limit(limiter, websocket)
                if retry_after is not None:
                    # Refused as a validation error: strawberry answers those on every
                    # transport (an exception here killed a subscription's worker task).
                    rule = type("RateLimited", (_RateLimitedRule,), {"retry_after": retry_after})
                    context_rules = self.execution_context.validation_rules
                    self.execution_context.validation_rules = (*context_rules, rule)
            yield

    hide_suggestions = not mount.introspection

    class MaskUnexpected(MaskErrors):
        """Send a generic message for unexpected exceptions; log them (module docstring).
        With introspection off, drop the schema's names suggested in the request's errors."""

        def __init__(self) -> None:
            super().__init__(should_mask_error=self._masked, error_message=_UNEXPECTED)
            self._executing = False

        def on_execute(self) -> Any:
            # Only errors of the execution are masked: parse and validation errors are
            # about the document, whatever raised them (a 5000-digit Int literal fails
            # int()), and the client needs them as they are.
            self._executing = True
            yield

        def _unexpected(self, error: GraphQLError) -> bool:
            return self._executing and _public_message(error) is not None

        def _masked(self, error: GraphQLError) -> bool:
            return self._unexpected(error) or (hide_suggestions and _suggests(error))

        def anonymise_error(self, error: GraphQLError) -> GraphQLError:
            if not self._unexpected(error):
                return _without_suggestion(error)
            if logger is not None:
                logger.error(
                    "graphql resolver error",
                    exc_info=error.original_error,
                    path=[str(p) for p in error.path or ()],
                    request_id=get_request_id(),
                )
            masked = super().anonymise_error(error)
            masked.message = _public_message(error) or _UNEXPECTED
            masked.args = (masked.message,)
            return masked

    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=mount.max_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=mount.max_aliases),
        lambda: QueryDepthLimiter(max_depth=mount.max_depth),
        OperationRules,
        MaskUnexpected,
    ]
    if getattr(limiter, "default_limit", None) is not None:
        extensions.insert(0, RateLimitWebSocketOperations)  # first, as it always was
    if not mount.introspection:
        extensions.append(DisableIntrospection)
    return extensions


def guarded_schema(mount: GraphQLMount, logger: Any = None, limiter: Any = None) -> Any:
    """A shallow copy of ``mount.schema`` carrying the limits as extensions (``logger``
    logs masked errors, ``limiter`` counts operations sent over WebSocket)."""
    for name in ("max_depth", "max_cost", "max_tokens", "max_aliases", "max_batch"):
        if getattr(mount, name) < 1:
            raise ConfigError(f"graphql.{name} must be >= 1, got {getattr(mount, name)}")
    schema = copy.copy(mount.schema)
    schema.extensions = (*mount.schema.extensions, *_extensions(mount, logger, limiter))
    batching = {"max_operations": mount.max_batch} if mount.max_batch > 1 else None
    schema.config = dataclasses.replace(mount.schema.config, batching_config=batching)
    schema.execute = _without_subscriptions(schema.execute)
    return schema


def _without_subscriptions(execute: Any) -> Any:
    """``schema.execute`` refusing subscriptions: strawberry allows them over HTTP for
    its streaming transports, which the mount does not serve, so one sent by POST (or
    GET) ran its resolver as a plain field. The client got "Unexpected error." and the
    server logged a resolver crash with its traceback, once per request. Refused
    instead, as strawberry refuses a mutation over GET (400, "subscriptions are not
    allowed when using POST"). Only HTTP runs ``execute``: the WebSocket protocols
    use ``subscribe`` and ``stream``."""
    from strawberry.types.graphql import OperationType

    async def execute_without_subscriptions(
        *args: Any, allowed_operation_types: Any = None, **kwargs: Any
    ) -> Any:
        given = allowed_operation_types
        allowed = {OperationType.QUERY, OperationType.MUTATION} if given is None else set(given)
        allowed.discard(OperationType.SUBSCRIPTION)
        return await execute(*args, allowed_operation_types=allowed, **kwargs)

    return execute_without_subscriptions


_UNSUPPORTED_TYPE = "Unsupported content type"

GRAPHIQL_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' https://unpkg.com; "
    "style-src 'unsafe-inline' https://unpkg.com; img-src 'self' data: https://unpkg.com; "
    "font-src data: https://unpkg.com; connect-src 'self'; frame-ancestors 'none'"
)
"""The Content-Security-Policy of the GraphiQL page (``introspection=True``)."""

_FIELD_TYPES: tuple[tuple[str, str, str], ...] = (
    ("query", "query", "a string"),
    ("variables", "variables", "an object"),
    ("operation_name", "operationName", "a string"),
    ("extensions", "extensions", "an object"),
)


def _member_fault(member: str, kind: str, value: object) -> str | None:
    """Why ``value`` cannot be the operation's ``member``, or None when it can."""
    wanted = str if kind == "a string" else dict
    if value is not None and not isinstance(value, wanted):
        return f"The GraphQL operation's `{member}` must be {kind} or null, if provided."
    return None


def _check_operation(operation: Any) -> None:
    """400 for an operation whose members have the wrong JSON type (strawberry checks a
    single operation's ``query``, ``variables`` and ``extensions``, not ``operationName``
    nor the operations of a batch, which then failed as a 500)."""
    for attribute, member, kind in _FIELD_TYPES:
        fault = _member_fault(member, kind, getattr(operation, attribute, None))
        if fault is not None:
            raise HTTPException(400, fault)


def _ws_message_fault(message: object, start: str, stop: str) -> str | None:
    """Why ``message`` (JSON read from a GraphQL WebSocket) is not a protocol message,
    or None when it is one; ``start`` and ``stop`` are the types that start and end an
    operation (``subscribe`` and ``complete``, or ``start`` and ``stop`` in the legacy
    protocol). strawberry indexes the message as these shapes, so anything else raised
    out of the connection."""
    if not isinstance(message, dict):
        return "A WebSocket message must be a JSON object."
    kind = message.get("type")
    if not isinstance(kind, str):
        return "A WebSocket message's `type` must be a string."
    if kind in (start, stop) and not isinstance(message.get("id"), str):
        return f"A `{kind}` message's `id` must be a string."
    if kind != start:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
        return f"A `{kind}` message's payload must be an object with a string `query`."
    for _, member, wanted in _FIELD_TYPES[1:]:  # query checked above
        fault = _member_fault(member, wanted, payload.get(member))
        if fault is not None:
            return fault
    return None


def _router_class() -> type[Any]:
    """strawberry's FastAPI router answering the request's faults as the module says."""
    from strawberry.fastapi import GraphQLRouter
    from strawberry.http import base as strawberry_http
    from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
        BaseGraphQLTransportWSHandler,
    )
    from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
    from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage
    from strawberry.types.unset import UNSET

    # cross_web's HTTPException in new releases, strawberry's own in older ones.
    refusal: type[Exception] = vars(strawberry_http)["HTTPException"]

    class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
        async def handle_message(self, message: Any) -> None:
            fault = _ws_message_fault(message, "subscribe", "complete")
            if fault is not None:
                await self.handle_invalid_message(fault)  # close 4400, as the spec says
                return
            await super().handle_message(message)

    class LegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
        async def handle_message(self, message: Any) -> None:
            fault = _ws_message_fault(message, "start", "stop")
            if fault is None:
                await super().handle_message(message)
            elif (
                isinstance(message, dict)
                and message.get("type") == "start"
                and isinstance(message.get("id"), str)
            ):
                # A start whose payload is wrong: its operation fails; the others go on.
                error = ErrorMessage(type="error", id=message["id"], payload={"message": fault})
                await self.send_message(error)
            # Otherwise ignored, as this protocol ignores a message that is not JSON.

    class Router(GraphQLRouter[Any, Any]):
        graphql_transport_ws_handler_class = TransportWSHandler
        graphql_ws_handler_class = LegacyWSHandler

        def decode_json(self, data: str | bytes) -> object:
            try:
                return super().decode_json(data)
            except json.JSONDecodeError:
                raise
            except (RecursionError, ValueError) as exc:
                # Nested deeper than the parser's recursion limit, bytes that are not
                # UTF-8 (UnicodeDecodeError), an integer of more digits than Python
                # converts: as bad as a syntax error, the only one strawberry catches.
                raise json.JSONDecodeError(f"JSON not readable: {exc}", "", 0) from exc

        async def parse_http_body(self, request: Any) -> Any:
            try:
                data = await super().parse_http_body(request)
            except AttributeError as exc:  # strawberry calls .get() on what it parsed
                raise HTTPException(
                    400,
                    "The GraphQL request must be a JSON object (a list of them for a batch).",
                ) from exc
            for operation in data if isinstance(data, list) else (data,):
                _check_operation(operation)
            return data

        async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
            try:
                return await super().run(request, context=context, root_value=root_value)
            except refusal as exc:
                # strawberry's own refusals become problem+json like every other route.
                status = int(getattr(exc, "status_code", 400))
                reason = str(getattr(exc, "reason", exc))
                if status == 400 and reason == _UNSUPPORTED_TYPE:
                    status = 415  # GraphQL over HTTP; the factory's JSON routes say 415 too
                raise HTTPException(status, reason) from exc

        async def render_graphql_ide(self, request: Any) -> Any:
            page = await super().render_graphql_ide(request)
            # The factory's CSP (default-src 'none') blocked every script of the page:
            # the IDE that introspection=True promises was blank. This policy allows
            # what strawberry's GraphiQL page loads (inline scripts, unpkg.com).
            page.headers["content-security-policy"] = GRAPHIQL_CSP
            return page

    return Router


def mount_graphql(app: FastAPI, graphql: Any) -> None:
    """Serve ``graphql`` (a strawberry Schema or a :class:`GraphQLMount`) on ``app``."""
    try:
        from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

        router_class = _router_class()
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"graphql= needs the 'graphql' extra: pip install 'flext-api[graphql]' ({exc})"
        ) from exc
    mount = graphql if isinstance(graphql, GraphQLMount) else GraphQLMount(graphql)
    state = app.state.flext
    limiter = getattr(state, "rate_limiter", None)
    schema = guarded_schema(mount, getattr(state, "logger", None), limiter)
    needs_auth = auth_configured(state.config.auth) if mount.auth is None else mount.auth

    async def context(conn: HTTPConnection) -> dict[str, Any]:
        principal = await authenticate_connection(conn) if needs_auth else None
        context: dict[str, Any] = {"principal": principal}
        if isinstance(conn, WebSocket):
            context["websocket"] = conn
        else:
            context["request"] = conn
        return context

    options: dict[str, Any] = {}
    origins = state.config.cors.allow_origins
    if origins and "allowed_origins" in inspect.signature(router_class.__init__).parameters:
        # strawberry refuses a WebSocket from another origin (cross-site WebSocket
        # hijacking); the origins the app lets in by CORS are let in here too (they
        # could query over HTTP but not subscribe).
        options["allowed_origins"] = origins
    router = router_class(
        schema,
        **options,
        path=mount.path,
        graphql_ide="graphiql" if mount.introspection else None,
        allow_queries_via_get=mount.allow_get,
        context_getter=context,
        subscription_protocols=(
            (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL) if mount.subscriptions else ()
        ),
    )
    app.include_router(router)
