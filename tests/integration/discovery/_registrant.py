"""A separate process that registers one instance and lives until killed.

Usage: python -m tests.integration.discovery._registrant KIND URL PREFIX ID [OTHER_ID]
It prints ``ready`` once the instance is registered, then, given ``OTHER_ID``, ``saw
OTHER_ID`` once its own registry lists that instance (registered by another process).
"""

from __future__ import annotations

import asyncio
import sys

from flext_api.discovery import RegistryBackend, ServiceInstance, ServiceRegistry
from tests._poll import eventually


def _backend(kind: str, url: str, prefix: str) -> RegistryBackend:
    if kind == "redis":
        from flext_api.discovery import RedisBackend

        return RedisBackend(url, ttl=1.5, prefix=prefix)
    from flext_api.discovery import EtcdBackend

    return EtcdBackend(url, ttl=2, prefix=prefix)


async def main(kind: str, url: str, prefix: str, instance_id: str, other: str = "") -> None:
    registry = ServiceRegistry(_backend(kind, url, prefix))
    instance = ServiceInstance(id=instance_id, name="orders", url="http://127.0.0.1:9")
    (await registry.register("orders", instance)).unwrap()
    print("ready", flush=True)
    if other:

        def sees_other() -> bool:
            return other in {i.id for i in registry.instances("orders").unwrap_or([])}

        if await eventually(sees_other):
            print(f"saw {other}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
