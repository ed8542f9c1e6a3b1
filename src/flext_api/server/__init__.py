"""flext-api server: ``create_fastapi_app`` and its parts (needs the ``server`` extra).

    from flext_api.server import create_fastapi_app, rate_limit, require_auth

    app = create_fastapi_app(ServerConfig(title="orders"))

See docs/server.md for every feature, its default and how to change it.
"""

try:
    import fastapi as _fastapi  # noqa: F401
    import jwt as _jwt  # noqa: F401
    import limits as _limits  # noqa: F401
    import prometheus_client as _prometheus_client  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"flext_api.server needs the 'server' extra: pip install 'flext-api[server]' ({exc})"
    ) from exc

from flext_api._context import get_request_id as get_request_id
from flext_api._server_config import AccessLogConfig as AccessLogConfig
from flext_api._server_config import AuthConfig as AuthConfig
from flext_api._server_config import CorsConfig as CorsConfig
from flext_api._server_config import HealthConfig as HealthConfig
from flext_api._server_config import MetricsConfig as MetricsConfig
from flext_api._server_config import SecurityHeadersConfig as SecurityHeadersConfig
from flext_api._server_config import ServerConfig as ServerConfig
from flext_api._server_config import ServerRateLimitConfig as ServerRateLimitConfig

from ._app import build_middleware as build_middleware
from ._app import create_fastapi_app as create_fastapi_app
from ._auth import Authenticator as Authenticator
from ._auth import Principal as Principal
from ._auth import require_auth as require_auth
from ._auth import require_roles as require_roles
from ._client_ip import ClientResolver as ClientResolver
from ._graphql_mount import GraphQLMount as GraphQLMount
from ._handlers import error_response as error_response
from ._health import ReadinessCheck as ReadinessCheck
from ._jwks import JwksCache as JwksCache
from ._jwks import JwksFetch as JwksFetch
from ._logging import make_json_logger as make_json_logger
from ._metrics import ServerMetrics as ServerMetrics
from ._problem import PROBLEM_JSON as PROBLEM_JSON
from ._problem import problem_response as problem_response
from ._problem import status_for_error as status_for_error
from ._ratelimit import RateLimitDecision as RateLimitDecision
from ._ratelimit import RateLimitService as RateLimitService
from ._ratelimit import rate_limit as rate_limit
from ._results import FlextRoute as FlextRoute
from ._results import result_response as result_response
from ._route_cache import RouteCache as RouteCache
from ._route_cache import cached as cached
from ._sse import EventStreamResponse as EventStreamResponse
from ._sse import encode_event as encode_event
from ._state import FlextServerState as FlextServerState
from ._ws_auth import require_websocket_auth as require_websocket_auth
from .middleware._slow import slow_request_threshold as slow_request_threshold

__all__ = [
    "AccessLogConfig",
    "AuthConfig",
    "Authenticator",
    "ClientResolver",
    "CorsConfig",
    "EventStreamResponse",
    "FlextRoute",
    "FlextServerState",
    "GraphQLMount",
    "HealthConfig",
    "JwksCache",
    "JwksFetch",
    "MetricsConfig",
    "PROBLEM_JSON",
    "Principal",
    "RateLimitDecision",
    "RateLimitService",
    "ReadinessCheck",
    "RouteCache",
    "SecurityHeadersConfig",
    "ServerConfig",
    "ServerMetrics",
    "ServerRateLimitConfig",
    "build_middleware",
    "cached",
    "create_fastapi_app",
    "encode_event",
    "error_response",
    "get_request_id",
    "make_json_logger",
    "problem_response",
    "rate_limit",
    "require_auth",
    "require_roles",
    "require_websocket_auth",
    "result_response",
    "slow_request_threshold",
    "status_for_error",
]
