"""Seed 004 (Nexios "Advanced Features"), service discovery and ServiceClient, as typed.

docs/discovery.md: the seed's ``ServiceInstance``, ``ServiceRegistry`` and
``ServiceClient`` are ``flext_api.discovery``'s, so the seed's class bodies are replaced
by that import; ``ServiceClient.request`` returns a ``FlextResult`` (the docs' line
``result.map(lambda r: r.json()).unwrap_or(None)`` reads the user). The Nexios handlers
``(request, response)`` are FastAPI handlers returning ``JSONResponse``, registered by
``build_app(registry, auth_client, self_url)``; ``"http://localhost:8000"`` is the app's
own URL.
"""

import asyncio
import time
import uuid

from fastapi import Request
from fastapi.responses import JSONResponse

from flext_api.discovery import ServiceClient, ServiceInstance, ServiceRegistry
from flext_api.server import create_fastapi_app


def build_app(registry, auth_client, self_url="http://localhost:8000"):
    app = create_fastapi_app()

    # Register this service
    @app.on_event("startup")
    async def register_service():
        instance = ServiceInstance(
            id=str(uuid.uuid4()),
            name="api",
            url=self_url,
            health="healthy",
            last_check=time.time()
        )

        await registry.register("api", instance)

        # Start health checks
        app.state.health_task = asyncio.create_task(registry.health_check())

    @app.get("/protected")
    async def protected_route(request: Request):
        token = request.headers.get("Authorization")

        # Call auth service
        try:
            result = await auth_client.request(
                "POST",
                "/verify",
                json={"token": token}
            )
            user = result.map(lambda r: r.json()).unwrap_or(None)
            if user is None:
                raise Exception(result.error)
            return JSONResponse({"user": user})
        except Exception as e:
            return JSONResponse({
                "error": str(e)
            }, status_code=401)

    return app


def make_clients():
    # Example usage
    registry = ServiceRegistry()

    # Use service client
    auth_client = ServiceClient(registry, "auth")
    return registry, auth_client
