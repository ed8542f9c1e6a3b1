"""``EtcdBackend``: instances in etcd v3 under a lease, watched for changes.

Each process grants one lease of ``ttl`` seconds, puts its instances under it
(``{prefix}/{name}/{id}`` -> instance JSON) and keeps it alive every ``ttl / 3``; when
the process dies the lease runs out and etcd deletes its keys, which every watcher sees
as a DELETE event. A keep-alive that finds the lease gone (etcd lost it, or the process
was cut off longer than ``ttl``) grants a new one and puts the instances again.

Why the v3 JSON gateway (``/v3/kv/range``, ``/v3/lease/*``, ``/v3/watch``) and not a
gRPC client: etcd serves it over plain HTTP on the client port, so flext-api's own
aiohttp transport (error translation, timeouts, pooling) reaches it with no new
dependency, while the Python gRPC clients pull in ``grpcio``. The discovery layer sits
below :mod:`flext_api.client`, so it talks to the transport, not the client; a watch is
one streamed response with one JSON object per line. Keys and values travel base64
encoded, lease ids and TTLs as strings.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import structlog

from .._config import PoolConfig, TimeoutConfig
from .._errors import ConfigError, ErrorCode, FlextApiError
from .._models import HttpRequest
from .._redact import strip_url
from .._result import FlextResult
from ..transports._base import Transport
from ._instance import ServiceInstance, check_stored

__all__ = ["EtcdBackend"]

_log = structlog.get_logger("flext_api.discovery")
_JSON = {"Content-Type": "application/json"}
#: etcd's word for a put under a lease that ran out (or was revoked).
_LEASE_GONE = "requested lease not found"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _closed_error() -> FlextApiError:
    # A keep-alive started after aclose() would hold the lease (and the instances) forever.
    return FlextApiError.from_code(ErrorCode.INVALID_REQUEST, "etcd registry backend is closed")


class EtcdBackend:
    """A registry backend on etcd v3 (leases with TTL, keep-alive, watch).

    Args:
        url: etcd's client URL, ``http://127.0.0.1:2379``.
        ttl: lease TTL in whole seconds (etcd's unit; default 10).
        prefix: key prefix.
        transport: a flext-api transport (default: an aiohttp one of its own).
    """

    kind = "etcd"
    shared = True

    def __init__(
        self,
        url: str = "http://127.0.0.1:2379",
        *,
        ttl: int = 10,
        prefix: str = "/flext/discovery",
        transport: Transport | None = None,
    ) -> None:
        whole: object = ttl
        if not isinstance(whole, int) or isinstance(whole, bool) or whole < 1:
            raise ConfigError("etcd lease ttl must be a whole number of seconds >= 1")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "etcd url must be http(s)://host:port (its v3 JSON gateway), "
                f"got {strip_url(url)!r}"
            )
        self.url = url.rstrip("/")
        self.ttl = ttl
        self.prefix = prefix.rstrip("/")
        self._timeout = TimeoutConfig.of(min(2.0, ttl / 2))
        self._own_transport = transport is None
        if transport is None:
            from ..transports._aiohttp import AiohttpTransport

            transport = AiohttpTransport(PoolConfig(max_connections=32), self._timeout)
        self._transport = transport
        self._lease: str | None = None
        self._owned: dict[tuple[str, str], ServiceInstance] = {}
        self._revisions: dict[str, int] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._keeping_failed = False
        self._closed = False

    # -- the JSON gateway -----------------------------------------------------------------
    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = HttpRequest(
            "POST",
            f"{self.url}{path}",
            headers=_JSON,
            content=json.dumps(body).encode(),
            timeout=self._timeout,
        )
        response = await self._transport.send(request)
        if response.status_code != 200:
            text = response.text[:200]
            raise FlextApiError.from_code(
                ErrorCode.CONNECT_ERROR,
                f"etcd {path} answered {response.status_code}: {text}",
                details={"lease_gone": _LEASE_GONE in text},
            )
        try:
            data: dict[str, Any] = json.loads(response.content)
        except ValueError as exc:
            raise FlextApiError.from_code(
                ErrorCode.DECODE_ERROR, f"etcd {path} answered non-JSON"
            ) from exc
        return data

    def _key(self, name: str, instance_id: str = "") -> str:
        return f"{self.prefix}/{name}/{instance_id}"

    async def _grant(self) -> str:
        granted = await self._call("/v3/lease/grant", {"TTL": self.ttl})
        lease = str(granted["ID"])
        self._lease = lease
        return lease

    async def _put(self, instance: ServiceInstance, lease: str) -> None:
        value = json.dumps(instance.to_dict(), separators=(",", ":"), sort_keys=True)
        await self._call(
            "/v3/kv/put",
            {
                "key": _b64(self._key(instance.name, instance.id)),
                "value": _b64(value),
                "lease": lease,
            },
        )

    # -- the backend protocol ---------------------------------------------------------------
    async def register(self, instance: ServiceInstance) -> FlextResult[None]:
        try:
            if self._closed:
                raise _closed_error()
            async with self._lock:
                lease = self._lease or await self._grant()
                try:
                    await self._put(instance, lease)
                except FlextApiError as exc:
                    if not exc.details.get("lease_gone"):
                        raise
                    # The lease ran out while this process was paused or cut off (the
                    # keep-alive has not noticed yet): a new one, the instances this
                    # process owns put again under it, then this one - rather than a
                    # failed register and every owned instance gone until the next
                    # keep-alive.
                    lease = await self._regrant()
                    await self._put(instance, lease)
            if self._closed:  # closed while the put was on its way: nothing keeps it alive
                raise _closed_error()
        except FlextApiError as exc:
            return FlextResult(error=exc)
        self._owned[(instance.name, instance.id)] = instance
        if self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())
        return FlextResult.ok(None)

    async def unregister(self, name: str, instance_id: str) -> FlextResult[None]:
        self._owned.pop((name, instance_id), None)
        try:
            await self._call("/v3/kv/deleterange", {"key": _b64(self._key(name, instance_id))})
        except FlextApiError as exc:
            return FlextResult(error=exc)
        return FlextResult.ok(None)

    def _range(self, name: str) -> dict[str, str]:
        start = self._key(name)
        end = start[:-1] + chr(ord(start[-1]) + 1)
        return {"key": _b64(start), "range_end": _b64(end)}

    async def list(self, name: str) -> FlextResult[list[ServiceInstance]]:
        try:
            data = await self._call("/v3/kv/range", self._range(name))
        except FlextApiError as exc:
            return FlextResult(error=exc)
        self._revisions[name] = int(data.get("header", {}).get("revision", 0))
        instances = []
        start = self._key(name)
        for kv in data.get("kvs", []):
            try:
                key = _unb64(kv["key"])
                instance = ServiceInstance.from_dict(json.loads(_unb64(kv["value"])))
                check_stored(instance, name, key[len(start) :])
            except (FlextApiError, ValueError, KeyError) as exc:
                _log.warning("discovery.bad_record", backend="etcd", service=name, error=str(exc))
                continue
            instances.append(instance)
        return FlextResult.ok(instances)

    async def changes(self, name: str) -> AsyncGenerator[None, None]:
        create: dict[str, Any] = self._range(name)
        revision = self._revisions.get(name)
        if revision:
            create["start_revision"] = revision + 1
        request = HttpRequest(
            "POST",
            f"{self.url}/v3/watch",
            headers=_JSON,
            content=json.dumps({"create_request": create}).encode(),
            # A watch is one long response: no read timeout, a bounded connect.
            timeout=TimeoutConfig(connect=self._timeout.connect, read=None, total=None),
        )
        response = await self._transport.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise FlextApiError.from_code(
                    ErrorCode.CONNECT_ERROR, f"etcd watch answered {response.status_code}"
                )
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                message = json.loads(line)
                result = message.get("result", {}) if isinstance(message, dict) else None
                if not isinstance(result, dict):
                    raise ValueError(f"not a watch response object: {line[:80]!r}")
                if result.get("events") or result.get("compact_revision"):
                    yield None
                if result.get("canceled"):
                    # etcd cancelled the watch (its start revision was compacted away)
                    # and keeps the response open with nothing more to say: end, so the
                    # registry lists and watches afresh.
                    return
        except ValueError as exc:
            raise FlextApiError.from_code(ErrorCode.DECODE_ERROR, "bad etcd watch line") from exc
        finally:
            await response.aclose()

    async def _keep_alive(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.ttl / 3)
            try:
                async with self._lock:
                    await self._renew()
            except (FlextApiError, KeyError, ValueError) as exc:
                if not self._keeping_failed:
                    self._keeping_failed = True
                    _log.warning("discovery.keepalive_failed", backend="etcd", error=str(exc))
                continue
            if self._keeping_failed:
                self._keeping_failed = False
                _log.info("discovery.keepalive_recovered", backend="etcd")

    async def _renew(self) -> None:
        lease = self._lease
        if lease is not None:
            answer = await self._call("/v3/lease/keepalive", {"ID": lease})
            if int(answer.get("result", {}).get("TTL", 0)) > 0:
                return
        await self._regrant()

    async def _regrant(self) -> str:
        """The lease is gone: a new one, and every owned instance put again under it."""
        lease = await self._grant()
        for instance in list(self._owned.values()):
            await self._put(instance, lease)
        return lease

    async def aclose(self) -> None:
        """Stop keep-alives (the lease then expires) and close the transport."""
        self._closed = True
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.wait({self._keeper}, timeout=2.0)
            self._keeper = None
        if self._own_transport:
            await self._transport.aclose()

    def __repr__(self) -> str:
        return (
            f"<EtcdBackend {strip_url(self.url)} ttl={self.ttl}s "
            f"[{len(self._owned)} instances leased]>"
        )
