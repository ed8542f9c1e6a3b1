"""Composite routes: call several upstreams at once and merge their JSON (KrakenD-style).

Each backend is a ``GET`` to one instance of its cluster (picked by the cluster's
balancer and breakers, reported back like any proxied attempt), bounded by the
backend's own ``timeout``. The merged answer is sent as soon as every backend answered
or ran out of time, so a slow backend costs at most its timeout. A backend that failed,
timed out, answered more than ``max_body_bytes`` or something other than 2xx JSON is
left out: its key is listed in ``_partial`` and the response carries
``X-Aggregate-Partial: true`` (status 200 while at least one backend answered, 502
when none did). In a ``flat`` merge a backend's own ``_partial`` key is dropped.

A composite route answers ``GET`` and ``HEAD`` only: its backends are ``GET`` requests and
the client's body goes nowhere, so the edge answers any other method with a 405
``method_not_allowed`` (``Allow: GET, HEAD``) before any backend is called (a ``DELETE``
or a ``POST`` was answered 200 from the backends' ``GET`` requests, as if it had been
done); KrakenD binds an endpoint to its method the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Scope, Send

from .._config import TimeoutConfig
from .._errors import FlextApiError
from .._exactjson import dumps as exact_dumps
from .._exactjson import loads as exact_json
from .._models import Headers, HttpRequest
from ._cluster import Cluster
from ._edge_config import AggregateBackend, AggregateConfig
from ._reasons import Reason

__all__ = ["aggregate"]


async def _call(backend: AggregateBackend, cluster: Cluster, headers: Headers, limit: int) -> Any:
    picked = cluster.pick(set())
    if isinstance(picked, Reason):
        raise LookupError(picked.value)
    start = cluster.clock.monotonic()
    # The backend's timeout is the request's deadline, so a backend that does not answer
    # in time fails with the transport's typed timeout, reported to its breaker and
    # passive health as a proxied attempt's is (an outer cancel only released it: a
    # backend that always hung was never found failing, and every request waited).
    request = HttpRequest(
        "GET",
        picked.url + backend.path,
        headers=headers,
        timeout=TimeoutConfig(
            connect=backend.timeout, read=backend.timeout, write=backend.timeout, pool=None
        ),
        deadline=start + backend.timeout,
    )
    try:
        response = await cluster.transport.send(request, stream=True)
    except FlextApiError as exc:
        cluster.report(
            picked, status=None, error=exc.code, duration=cluster.clock.monotonic() - start
        )
        raise
    except asyncio.CancelledError:
        cluster.release(picked)
        raise
    cluster.report(
        picked,
        status=response.status_code,
        error=None,
        duration=cluster.clock.monotonic() - start,
    )
    try:
        if not 200 <= response.status_code < 300:
            raise LookupError(f"status {response.status_code}")
        body = bytearray()
        # The body within what is left of the timeout (the head took the rest).
        async with asyncio.timeout(max(0.0, start + backend.timeout - cluster.clock.monotonic())):
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:  # a backend cannot make the gateway buffer without end
                    raise LookupError(f"body over max_body_bytes ({limit})")
    finally:
        await response.aclose()
    return exact_json(body)


async def _bounded(
    backend: AggregateBackend, cluster: Cluster, headers: Headers, limit: int
) -> tuple[str, Any, str | None]:
    try:
        return backend.key, await _call(backend, cluster, headers, limit), None
    except TimeoutError:  # the body's read (asyncio's) or the head's (the transport's)
        return backend.key, None, "timeout"
    except (FlextApiError, LookupError, orjson.JSONDecodeError) as exc:
        return backend.key, None, type(exc).__name__


_FORWARDED = frozenset({b"authorization", b"accept-language", b"x-authenticated-subject"})


async def aggregate(
    config: AggregateConfig,
    clusters: dict[str, Cluster],
    scope: Scope,
    send: Send,
    request_id: bytes,
    identity: frozenset[bytes] = frozenset(),
) -> int:
    """Answer ``scope`` with the merged JSON of ``config``'s backends; returns the status.

    The backends get the client's ``Authorization`` and ``Accept-Language`` and the
    headers the gateway set (``identity``: its identity and copied forward-auth headers,
    whatever their configured names; the core auth's subject): a client's own values of
    those were dropped before, and no other client header passes.
    """
    forwarded = _FORWARDED | identity
    headers = Headers.from_pairs(
        [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"] if n in forwarded]
        + [("x-request-id", request_id.decode("latin-1")), ("accept", "application/json")]
    )
    results = await asyncio.gather(
        *(_bounded(b, clusters[b.cluster], headers, config.max_body_bytes) for b in config.backends)
    )
    merged: dict[str, Any] = {}
    failed: list[str] = []
    for key, value, error in results:
        if error is not None:
            failed.append(key)
        elif config.merge == "flat" and isinstance(value, dict):
            value.pop("_partial", None)  # the marker is the gateway's alone
            merged.update(value)
        else:
            merged[key] = value
    status = 502 if len(failed) == len(results) else 200
    pairs = [(b"content-type", b"application/json"), (b"x-request-id", request_id)]
    if failed:
        merged["_partial"] = sorted(failed)
        pairs.append((b"x-aggregate-partial", b"true"))
    body = exact_dumps(merged)
    pairs.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": body})
    return status
