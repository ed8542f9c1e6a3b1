"""A production-ready service built on ``create_fastapi_app``.

Three endpoints on top of what the factory gives every service (``/health``, ``/ready``,
``/metrics``, request IDs, JSON access log, problem+json errors, security headers, body
and content-type limits):

- ``GET /upstream``: calls an upstream through :class:`~flext_api.client.FlextApiClient`
  (``$UPSTREAM_URL``, by default this same service's ``/health``); the request ID
  travels along.
- ``GET /me``: protected; send ``X-API-Key: $DEMO_API_KEY`` (default ``demo-key-change-me``).
- ``POST /login``: rate-limited to 5 requests per minute per client.

Run it with either::

    uvicorn examples.service:app --host 127.0.0.1 --port 8000 --no-proxy-headers
    python examples/service.py          # PORT=8000 by default; serves on 127.0.0.1
"""

from __future__ import annotations

import os
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import SecretStr

from flext_api import FlextResult, HttpResponse
from flext_api.client import FlextApiClient
from flext_api.server import (
    AuthConfig,
    Principal,
    ServerConfig,
    create_fastapi_app,
    get_request_id,
    rate_limit,
    require_auth,
)

PORT = int(os.environ.get("PORT", "8000"))
API_KEY = os.environ.get("DEMO_API_KEY", "demo-key-change-me")

config = ServerConfig(
    title="flext-api example service",
    allowed_hosts=("127.0.0.1", "localhost"),
    auth=AuthConfig(api_keys={"demo": SecretStr(API_KEY)}),
)
app = create_fastapi_app(config)
# The upstream /upstream calls; by default this very service, at the address it is served on.
app.state.upstream_url = os.environ.get("UPSTREAM_URL")
# Closed by the app's lifespan on shutdown.
client = app.state.flext.add_resource(FlextApiClient())


@app.get("/upstream")
async def upstream(request: Request) -> FlextResult[dict[str, Any]]:
    """Call the upstream's /health through the resilient client (X-Request-ID propagated)."""
    upstream_url: str | None = request.app.state.upstream_url
    if upstream_url is None:
        host, port = request.scope["server"]  # the socket we serve on, not the Host header
        upstream_url = f"http://{host}:{port}"
    result: FlextResult[HttpResponse] = await client.get(f"{upstream_url}/health")
    return result.map(
        lambda response: {
            "upstream_status": response.status_code,
            "upstream_body": response.json(),
            "request_id": get_request_id(),
            # the upstream echoes the ID it received: the same one, propagated
            "upstream_request_id": response.headers.get("x-request-id"),
        }
    )


@app.get("/me")
async def me(user: Annotated[Principal, Depends(require_auth())]) -> dict[str, str]:
    """Who am I? Needs the X-API-Key header."""
    return {"subject": user.subject, "method": user.method}


@app.post("/login", dependencies=[Depends(rate_limit("login", "5/minute"))])
async def login() -> dict[str, str]:
    """A stand-in login: the sixth call in a minute from one client gets a 429."""
    return {"token": "not-a-real-token"}


def main() -> None:
    """Serve on 127.0.0.1:$PORT and print what to try."""
    import uvicorn

    base = f"http://127.0.0.1:{PORT}"
    print(f"flext-api example service on {base}")
    print(f"  curl -i {base}/health")
    print(f"  curl -i {base}/ready")
    print(f"  curl -i {base}/upstream")
    print(f"  curl -i -H 'X-API-Key: {API_KEY}' {base}/me")
    print(f"  curl -i -X POST {base}/login      # 6 times in a minute -> 429")
    print(f"  curl -s {base}/metrics | head")
    print(f"  {base}/docs", flush=True)
    uvicorn.run(
        app, host="127.0.0.1", port=PORT, proxy_headers=False, server_header=False, access_log=False
    )


if __name__ == "__main__":
    main()
