"""``GraphQLMount``: the settings of a GraphQL schema served by the factory.

Kept apart from :mod:`._graphql` so that importing :mod:`flext_api.server` needs no
GraphQL library; strawberry is imported only when a schema is mounted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["GraphQLMount"]


@dataclass(frozen=True, slots=True)
class GraphQLMount:
    """Where and how :func:`create_fastapi_app` serves a strawberry schema.

    Attributes:
        schema: the ``strawberry.Schema``.
        path: the URL path (HTTP and WebSocket).
        auth: require credentials; None means "when the app has auth configured".
        max_depth, max_cost, max_tokens, max_aliases: the limits described above.
        max_batch: operations allowed in one batched request (1 turns batching off).
        introspection: allow ``__schema``/``__type`` (and serve the GraphiQL IDE).
        allow_get: accept queries sent with GET.
        subscriptions: serve subscriptions over WebSocket.
    """

    schema: Any
    path: str = "/graphql"
    auth: bool | None = None
    max_depth: int = 10
    max_cost: int = 1000
    max_tokens: int = 2000
    max_aliases: int = 15
    max_batch: int = 1
    introspection: bool = False
    allow_get: bool = False
    subscriptions: bool = True
