"""Seed 004 (Nexios "Advanced Features"), the "Mini-Project: Advanced API Gateway".

The seed hand-writes its gateway as a Nexios app; flext-api's gateway does the same from
one YAML file (docs/gateway.md, docs/gateway-policies.md; examples/gateway.yaml is the
demo's). Each seed feature, and the key that gives it:

| seed                                             | gateway YAML                                   |
|--------------------------------------------------|------------------------------------------------|
| ``rate_limiter.is_allowed(client_ip, RateLimit(100, 60))`` -> 429 | ``edge.defaults.rate_limits: [{limit: 100/minute, key: ip}]`` |
| ``jwt.decode(token, config.jwt_secret, algorithms=["HS256"])``, 401 | ``auth: {jwt_secret: ...}``, ``auth: true`` on a route |
| ``POST /orders`` needs ``request.state.user``     | route ``orders``: ``auth: true``               |
| ``@cached("user", expire=300)`` on ``/users/{id}``, ``/products`` | ``cache: true`` (RFC 9111: the service says ``max-age=300``) |
| ``route_request(service, request)``: 503 when no instance | clusters (``user-service``...), the proxy     |
| ``breaker.call(...)``                            | per-instance circuit breakers (on by default)  |
| ``@app.websocket("/ws/{service}")`` proxy        | WebSocket upgrades on any route (``websocket: true``) |
| ``GET /health``, ``GET /metrics``                | the admin port's ``/health`` and ``/metrics``  |

``SERVICES_APP`` stands for the seed's user-, product-, order- and inventory-services
(one FastAPI app; ``hits`` counts what reached it).
"""

import yaml
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse

GATEWAY_YAML = """
admin:
  host: 127.0.0.1
  token: admin-token-change-me
watch: false
auth:
  jwt_secret: {jwt_secret}
  jwt_algorithms: [HS256]
edge:
  defaults:
    rate_limits: [{{limit: 100/minute, key: ip}}]
clusters:
  - name: user-service
    instances: [{{url: "{upstream}"}}]
  - name: product-service
    instances: [{{url: "{upstream}"}}]
  - name: order-service
    instances: [{{url: "{upstream}"}}]
  - name: realtime
    instances: [{{url: "{upstream}"}}]
routes:
  - name: users
    match: {{path_prefix: /users/, methods: [GET]}}
    cluster: user-service
    cache: true
  - name: products
    match: {{path: /products, methods: [GET]}}
    cluster: product-service
    cache: true
  - name: orders
    match: {{path: /orders, methods: [POST]}}
    cluster: order-service
    auth: true
  - name: ws
    match: {{path_prefix: /ws/}}
    cluster: realtime
"""


def gateway_config(upstream, jwt_secret):
    """The gateway's config (a dict, as ``yaml.safe_load`` of the YAML above gives it)."""
    return yaml.safe_load(GATEWAY_YAML.format(upstream=upstream, jwt_secret=jwt_secret))


def services_app():
    app = FastAPI()
    app.state.hits = {}

    def hit(name):
        app.state.hits[name] = app.state.hits.get(name, 0) + 1

    @app.get("/users/{user_id}")
    async def get_user(user_id: int):
        hit("users")
        return JSONResponse(
            {"id": user_id, "name": f"user {user_id}"},
            headers={"Cache-Control": "public, max-age=300"},
        )

    @app.get("/products")
    async def list_products():
        hit("products")
        return JSONResponse(
            [{"id": 1, "name": "lamp"}], headers={"Cache-Control": "public, max-age=300"}
        )

    @app.post("/orders")
    async def create_order(request: Request):
        hit("orders")
        data = await request.json()
        subject = request.headers.get("X-Authenticated-Subject")
        return JSONResponse({**data, "user_id": subject}, status_code=201)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.websocket("/ws/{service}")
    async def echo(websocket: WebSocket, service: str):
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(f"{service}: {message}")

    return app
