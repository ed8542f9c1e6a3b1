"""flext-api gateway: a config-driven API gateway built from the client, server and discovery.

>>> from flext_api.gateway import GatewayConfig, create_gateway
>>> config = GatewayConfig.model_validate({
...     "clusters": [{"name": "orders", "instances": [{"url": "http://127.0.0.1:9001"}]}],
...     "routes": [{"name": "orders", "match": {"path_prefix": "/orders"}, "cluster": "orders"}],
... })
>>> app = create_gateway(config)        # an ASGI app: serve it with uvicorn

Needs the ``gateway`` extra (FastAPI/Starlette, uvicorn, prometheus-client, watchfiles).
See ``docs/gateway.md``.
"""

from __future__ import annotations

try:
    import prometheus_client as _prometheus_client  # noqa: F401
    import starlette as _starlette  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised without the extra only
    raise ImportError(
        "flext_api.gateway needs the 'gateway' extra: pip install 'flext-api[gateway]' "
        f"(missing module: {_exc.name})"
    ) from _exc

from ._app import Gateway as Gateway
from ._app import Snapshot as Snapshot
from ._app import create_gateway as create_gateway
from ._auth import hash_password as hash_password
from ._cluster import Cluster as Cluster
from ._config import AdminConfig as AdminConfig
from ._config import ClusterConfig as ClusterConfig
from ._config import GatewayConfig as GatewayConfig
from ._config import GatewayTimeouts as GatewayTimeouts
from ._config import HeaderRules as HeaderRules
from ._config import HealthConfig as HealthConfig
from ._config import InstanceConfig as InstanceConfig
from ._config import ListenerConfig as ListenerConfig
from ._config import MatchConfig as MatchConfig
from ._config import PassiveHealthConfig as PassiveHealthConfig
from ._config import RegistrySourceConfig as RegistrySourceConfig
from ._config import RewriteConfig as RewriteConfig
from ._config import RouteConfig as RouteConfig
from ._config import RouteRetry as RouteRetry
from ._edge_config import AggregateBackend as AggregateBackend
from ._edge_config import AggregateConfig as AggregateConfig
from ._edge_config import EdgeAuthConfig as EdgeAuthConfig
from ._edge_config import EdgeConfig as EdgeConfig
from ._edge_config import ForwardAuthConfig as ForwardAuthConfig
from ._edge_config import IdentityHeaders as IdentityHeaders
from ._edge_config import RateLimitRule as RateLimitRule
from ._edge_config import RouteAuth as RouteAuth
from ._edge_config import RoutePolicies as RoutePolicies
from ._edge_config import SharedCacheConfig as SharedCacheConfig
from ._edge_config import TransformConfig as TransformConfig
from ._loader import load_config as load_config
from ._loader import parse_config as parse_config
from ._reasons import Reason as Reason
from ._router import RouteMatch as RouteMatch
from ._router import Router as Router
from ._serve import GatewayRunner as GatewayRunner
from ._serve import serve as serve

__all__ = [
    "AdminConfig",
    "AggregateBackend",
    "AggregateConfig",
    "Cluster",
    "ClusterConfig",
    "EdgeAuthConfig",
    "EdgeConfig",
    "ForwardAuthConfig",
    "Gateway",
    "GatewayConfig",
    "GatewayRunner",
    "GatewayTimeouts",
    "HeaderRules",
    "HealthConfig",
    "IdentityHeaders",
    "InstanceConfig",
    "ListenerConfig",
    "MatchConfig",
    "PassiveHealthConfig",
    "RateLimitRule",
    "Reason",
    "RegistrySourceConfig",
    "RewriteConfig",
    "RouteAuth",
    "RouteConfig",
    "RouteMatch",
    "RoutePolicies",
    "RouteRetry",
    "Router",
    "SharedCacheConfig",
    "Snapshot",
    "TransformConfig",
    "create_gateway",
    "hash_password",
    "load_config",
    "parse_config",
    "serve",
]
