"""Seed 002 (Architecture), the server snippets: app config, middleware, startup hooks.

As written but for the imports the guide leaves out, and the names it leaves to the
reader (``metrics``, ``tracer``, the metrics client) passed in by the tests. The bare
``@app.on_event`` snippet is wrapped in ``register_monitoring(app, metrics, tracer)``.
"""

import time
import uuid

from fastapi import Response

from flext_api import FlextApiConfig, FlextResult, create_fastapi_app
from flext_api.middleware import (
    FlextApiMiddleware,
    PerformanceMonitoringMiddleware,
    SecurityMiddleware,
)


def build_app(cors_origins=("https://app.example",)):
    config = FlextApiConfig(
        title="Orders API",
        version="2.1.0",
        description="Orders of the FLEXT shop",
        docs_url="/api-docs",
        redoc_url="/api-redoc",
        cors_origins=list(cors_origins),
        cors_credentials=True,
        cors_methods=["GET", "POST"],
        cors_headers=["Authorization", "Content-Type"],
    )
    return create_fastapi_app(config)


# --- Security Middleware ---------------------------------------------------------------
class ComprehensiveSecurityMiddleware(SecurityMiddleware):
    """Comprehensive security middleware."""

    async def process_request(self, request) -> FlextResult[dict]:
        """Apply security checks to request."""

        # 1. Rate limiting
        rate_limit_result = await self.check_rate_limit(request)
        if rate_limit_result.is_failure:
            return rate_limit_result

        # 2. Input validation
        validation_result = await self.validate_request(request)
        if validation_result.is_failure:
            return validation_result

        # 3. Authentication
        auth_result = await self.authenticate_request(request)
        if auth_result.is_failure:
            return auth_result

        # 4. Authorization
        authz_result = await self.authorize_request(request)
        if authz_result.is_failure:
            return authz_result

        return FlextResult[dict].ok({})

    async def check_rate_limit(self, request) -> FlextResult[dict]:
        """Check rate limiting."""
        client_ip = self.get_client_ip(request)
        endpoint = f"{request.method} {request.path}"

        # Check rate limit for this client/endpoint
        current_count = self.rate_limiter.get_count(client_ip, endpoint)

        if current_count > self.max_requests_per_minute:
            return FlextResult[dict].fail("Rate limit exceeded")

        return FlextResult[dict].ok({})

    async def validate_request(self, request) -> FlextResult[dict]:
        """Validate request data."""
        # Validate request size
        if self.get_request_size(request) > self.max_request_size:
            return FlextResult[dict].fail("Request too large")

        # Validate content type
        if request.method in ["POST", "PUT", "PATCH"]:
            content_type = request.headers.get("Content-Type", "")
            if not self.is_valid_content_type(content_type):
                return FlextResult[dict].fail("Invalid content type")

        return FlextResult[dict].ok({})


# --- Performance Monitoring ---------------------------------------------------------------
class DetailedPerformanceMiddleware(PerformanceMonitoringMiddleware):
    """Detailed performance monitoring."""

    def __init__(self, metrics_client):
        self.metrics_client = metrics_client

    async def process_request(self, request) -> FlextResult[dict]:
        """Start performance monitoring."""
        request.start_time = time.time()
        request.request_id = str(uuid.uuid4())

        # Record request start
        self.metrics_client.record_request_start(
            request_id=request.request_id,
            method=request.method,
            path=request.path,
            user_agent=request.headers.get("User-Agent")
        )

        return FlextResult[dict].ok({})

    async def process_response(self, request, response) -> FlextResult[dict]:
        """Record performance metrics."""
        duration_ms = (time.time() - request.start_time) * 1000

        # Record request completion
        self.metrics_client.record_request_complete(
            request_id=request.request_id,
            status_code=response.status_code,
            duration_ms=duration_ms,
            response_size=len(response.content) if response.content else 0
        )

        # Add performance headers
        response.headers.update({
            "X-Response-Time": f"{duration_ms:.2f}ms",
            "X-Request-ID": request.request_id
        })

        # Check for slow requests
        if duration_ms > 1000:  # 1 second threshold
            self.logger.warning("Slow request detected", extra={
                "request_id": request.request_id,
                "duration_ms": duration_ms,
                "path": request.path,
                "method": request.method
            })

        return FlextResult[dict].ok({})


# --- Custom Middleware ---------------------------------------------------------------------
class CustomBusinessMiddleware(FlextApiMiddleware):
    """Custom middleware for business logic."""

    async def process_request(self, request) -> FlextResult[dict]:
        """Add business context to request."""
        # Add business-specific headers
        request.business_context = {
            "tenant_id": request.headers.get("X-Tenant-ID"),
            "user_role": request.headers.get("X-User-Role")
        }

        return FlextResult[dict].ok({})


# --- Monitoring and Optimization -----------------------------------------------------------
def register_monitoring(app, metrics, tracer):
    # Performance monitoring setup
    @app.on_event("startup")
    async def setup_monitoring():
        # Setup metrics collection
        metrics.setup(
            namespace="flext_api",
            subsystem="http"
        )

        # Setup tracing
        tracer.setup(service_name="flext-api")

    # Performance metrics endpoint
    @app.get("/metrics")
    async def get_metrics():
        """Prometheus metrics endpoint."""
        return Response(
            content=metrics.generate_latest(),
            media_type="text/plain"
        )
