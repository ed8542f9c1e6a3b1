"""Cross-checks of the edge policies against the whole config (run by GatewayConfig).

A route that accepts a credential source nobody configured, a Redis store without
``edge.redis_url``, or a composite route naming an unknown cluster is a config error
naming the route, so a config that validates is one the gateway can run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._edge_config import RouteAuth, RoutePolicies

if TYPE_CHECKING:
    from ._config import GatewayConfig, RouteConfig

__all__ = ["check_edge", "route_auth"]


def route_auth(route: RouteConfig, defaults: RoutePolicies) -> RouteAuth | None:
    """The edge auth of ``route``: its own mapping, else ``edge.defaults.auth``.

    A route that sets ``auth: true`` (the core's JWT / API-key check) or ``auth: false``
    (public) has no edge auth: setting the key overrides the default.
    """
    if isinstance(route.auth, RouteAuth):
        return route.auth
    if "auth" in route.model_fields_set:
        return None
    return defaults.auth


def check_edge(config: GatewayConfig) -> None:
    """Raise ValueError naming the route whose edge policy cannot run under ``config``."""
    edge = config.edge
    clusters = {c.name for c in config.clusters}
    available = {
        "jwt": edge.auth.jwt.jwt_enabled,
        "api_key": bool(edge.auth.jwt.api_keys or edge.auth.jwt.api_key_hashes),
        "basic": bool(edge.auth.basic),
        "forward": edge.auth.forward is not None,
    }
    for route in config.routes:
        auth = route_auth(route, edge.defaults)
        if auth is not None and auth.required:
            missing = [m for m in auth.methods if not available[m]]
            if missing:
                raise ValueError(
                    f"route {route.name!r} accepts auth {missing} but edge.auth configures "
                    "no such credential source"
                )
        for rule in route.rate_limits or ():
            if rule.store == "redis" and not edge.redis_url:
                raise ValueError(
                    f"route {route.name!r} has a redis rate limit but edge.redis_url is not set"
                )
        if route.aggregate is not None:
            for backend in route.aggregate.backends:
                if backend.cluster not in clusters:
                    raise ValueError(
                        f"route {route.name!r}: aggregate backend {backend.key!r} names "
                        f"cluster {backend.cluster!r}, which is not defined"
                    )
