"""GraphQL on the factory's app: ``create_fastapi_app(..., graphql=schema)``.

strawberry serves the schema (the product's original choice, DESIGN §4); this module
puts it behind what every other route of the factory has — the auth of ``ServerConfig``,
rate and body limits, request IDs, problem+json for HTTP-level refusals — and adds the
controls of the OWASP GraphQL cheat sheet, each on by default:

* **depth**: ``max_depth`` (strawberry's ``QueryDepthLimiter``; fragments are followed);
* **cost**: ``max_cost`` — each field costs 1, and a literal ``first``/``last``/``limit``
  argument multiplies the cost of the field's children (:class:`CostLimitRule`, ours:
  strawberry has no cost analysis); ``max_tokens`` and ``max_aliases`` bound the size
  of the document before it is validated at all;
* **introspection** off unless ``introspection=True`` (the IDE with it);
* **batching** bounded: off unless ``max_batch`` > 1, then at most that many operations
  in one request;
* **GET** queries off (queries in URLs end up in logs and caches) unless ``allow_get``.

Subscriptions are served over WebSocket (``graphql-transport-ws``, and the legacy
``graphql-ws``); the upgrade request goes through the same auth.

The user's schema is not modified: the limits live on a shallow copy of it.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from fastapi import FastAPI
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket

from flext_api._errors import ConfigError

from ._graphql_mount import GraphQLMount
from ._ws_auth import auth_configured, authenticate_connection

__all__ = ["CostLimitRule", "guarded_schema", "mount_graphql"]

_MULTIPLIERS = frozenset({"first", "last", "limit"})


class CostLimitRule(ValidationRule):
    """Refuse operations whose estimated cost exceeds the limit (see module docstring)."""

    max_cost = 1000

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        fragments = {
            d.name.value: d
            for d in self.context.document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        cost = _cost(node.selection_set, fragments, self.max_cost, frozenset())
        if cost > self.max_cost:
            name = node.name.value if node.name else "anonymous"
            self.report_error(
                GraphQLError(
                    f"'{name}' has an estimated cost of at least {cost}, above the "
                    f"limit of {self.max_cost}.",
                    node,
                )
            )


def _factor(literal: str, budget: int) -> int:
    """A page-size literal as a multiplier, at most ``budget + 1`` (already over budget).

    Capped before ``int()``: Python refuses to convert literals of thousands of digits,
    and a bigger factor would only make the refusal quote a bigger number.
    """
    if literal.startswith("-"):
        return 1
    if len(literal) > len(str(budget)):
        return budget + 1
    return max(1, min(int(literal), budget + 1))


def _cost(
    selections: SelectionSetNode | None,
    fragments: dict[str, Any],
    budget: int,
    seen: frozenset[str],
) -> int:
    if selections is None:
        return 0
    total = 0
    for sel in selections.selections:
        if isinstance(sel, FieldNode):
            factor = 1
            for arg in sel.arguments or ():
                if arg.name.value in _MULTIPLIERS and isinstance(arg.value, IntValueNode):
                    factor = _factor(arg.value.value, budget)
            total += 1 + factor * _cost(sel.selection_set, fragments, budget, seen)
        elif isinstance(sel, InlineFragmentNode):
            total += _cost(sel.selection_set, fragments, budget, seen)
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # cycles are another rule's error
                total += _cost(fragment.selection_set, fragments, budget, seen | {name})
        if total > budget:
            return total  # enough to refuse; stop counting
    return total


def _cost_rule(limit: int) -> type[ValidationRule]:
    return type("CostLimit", (CostLimitRule,), {"max_cost": limit})


def guarded_schema(mount: GraphQLMount) -> Any:
    """A shallow copy of ``mount.schema`` carrying the limits as extensions."""
    from strawberry.extensions import (
        AddValidationRules,
        DisableIntrospection,
        MaxAliasesLimiter,
        MaxTokensLimiter,
        QueryDepthLimiter,
    )

    for name in ("max_depth", "max_cost", "max_tokens", "max_aliases", "max_batch"):
        if getattr(mount, name) < 1:
            raise ConfigError(f"graphql.{name} must be >= 1, got {getattr(mount, name)}")
    rule = _cost_rule(mount.max_cost)
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=mount.max_tokens),
        lambda: MaxAliasesLimiter(max_alias_count=mount.max_aliases),
        lambda: QueryDepthLimiter(max_depth=mount.max_depth),
        lambda: AddValidationRules([rule]),
    ]
    if not mount.introspection:
        extensions.append(DisableIntrospection)
    schema = copy.copy(mount.schema)
    schema.extensions = (*mount.schema.extensions, *extensions)
    batching = {"max_operations": mount.max_batch} if mount.max_batch > 1 else None
    schema.config = dataclasses.replace(mount.schema.config, batching_config=batching)
    return schema


def mount_graphql(app: FastAPI, graphql: Any) -> None:
    """Serve ``graphql`` (a strawberry Schema or a :class:`GraphQLMount`) on ``app``."""
    try:
        from strawberry.fastapi import GraphQLRouter
        from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"graphql= needs the 'graphql' extra: pip install 'flext-api[graphql]' ({exc})"
        ) from exc
    mount = graphql if isinstance(graphql, GraphQLMount) else GraphQLMount(graphql)
    schema = guarded_schema(mount)
    state = app.state.flext
    needs_auth = auth_configured(state.config.auth) if mount.auth is None else mount.auth

    async def context(conn: HTTPConnection) -> dict[str, Any]:
        principal = await authenticate_connection(conn) if needs_auth else None
        context: dict[str, Any] = {"principal": principal}
        if isinstance(conn, WebSocket):
            context["websocket"] = conn
        else:
            context["request"] = conn
        return context

    router: GraphQLRouter[Any, Any] = GraphQLRouter(
        schema,
        path=mount.path,
        graphql_ide="graphiql" if mount.introspection else None,
        allow_queries_via_get=mount.allow_get,
        context_getter=context,
        subscription_protocols=(
            (GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL) if mount.subscriptions else ()
        ),
    )
    app.include_router(router)
