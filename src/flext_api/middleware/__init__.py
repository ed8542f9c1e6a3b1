"""The FLEXT middleware base classes (``process_request`` / ``process_response``).

Needs the ``server`` extra. ::

    from flext_api.middleware import FlextApiMiddleware

    class TenantMiddleware(FlextApiMiddleware):
        async def process_request(self, request) -> FlextResult[dict]:
            request.tenant = request.headers.get("X-Tenant-ID")   # -> request.state.tenant
            return FlextResult.ok({})

    app.add_middleware(TenantMiddleware())

The server's own stack (``create_fastapi_app``) is pure ASGI middleware in
:mod:`flext_api.server.middleware`; these classes are the FLEXT guide's way of adding to it.
"""

try:
    import starlette as _starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"flext_api.middleware needs the 'server' extra: pip install 'flext-api[server]' ({exc})"
    ) from exc

from ._base import FlextApiMiddleware as FlextApiMiddleware
from ._base import FlextRequest as FlextRequest
from ._base import FlextResponse as FlextResponse
from ._performance import PerformanceMonitoringMiddleware as PerformanceMonitoringMiddleware
from ._security import SecurityMiddleware as SecurityMiddleware

__all__ = [
    "FlextApiMiddleware",
    "FlextRequest",
    "FlextResponse",
    "PerformanceMonitoringMiddleware",
    "SecurityMiddleware",
]
