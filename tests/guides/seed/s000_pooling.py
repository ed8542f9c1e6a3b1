"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

from typing import Dict, Any, Optional
import threading
import time
from flext_api import create_flext_api
from flext_api import FlextResult, get_logger  # the guide: from flext_core

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

class ConnectionPoolManager:
    """Advanced connection pool management."""

    def __init__(self, max_connections: int = 10, connection_timeout: int = 30):
        self.max_connections = max_connections
        self.connection_timeout = connection_timeout
        self.pools: Dict[str, Dict[str, Any]] = {}
        self.pool_lock = threading.Lock()
        self.api = create_flext_api()

    def get_client(self, base_url: str, config: Optional[Dict[str, Any]] = None) -> FlextResult[Any]:
        """Get or create HTTP client with connection pooling."""

        with self.pool_lock:
            pool_key = self._generate_pool_key(base_url, config)

            # Check if pool exists and is valid
            if pool_key in self.pools:
                pool_info = self.pools[pool_key]

                # Check if pool is still valid (not expired)
                if time.time() - pool_info["created_at"] < self.connection_timeout:
                    pool_info["last_used"] = time.time()
                    pool_info["usage_count"] += 1

                    logger.debug("Reusing connection from pool",
                               pool_key=pool_key,
                               usage_count=pool_info["usage_count"])

                    return FlextResult.ok(pool_info["client"])
                else:
                    # Pool expired, remove it
                    logger.info("Connection pool expired, creating new", pool_key=pool_key)
                    del self.pools[pool_key]

            # Create new client and add to pool
            client_config = {
                "base_url": base_url,
                "timeout": 30,
                **(config or {})
            }

            client_result = self.api.flext_api_create_client(client_config)

            if client_result.success:
                self.pools[pool_key] = {
                    "client": client_result.data,
                    "created_at": time.time(),
                    "last_used": time.time(),
                    "usage_count": 1,
                    "base_url": base_url,
                    "config": config
                }

                logger.info("New connection pool created",
                           pool_key=pool_key,
                           total_pools=len(self.pools))

                return client_result
            else:
                logger.error("Failed to create pooled client", error=client_result.error)
                return client_result

    def _generate_pool_key(self, base_url: str, config: Optional[Dict[str, Any]]) -> str:
        """Generate unique key for connection pool."""
        config_str = str(sorted((config or {}).items()))
        return f"{base_url}:{hash(config_str)}"

    def cleanup_expired_pools(self):
        """Clean up expired connection pools."""
        with self.pool_lock:
            current_time = time.time()
            expired_keys = [
                key for key, pool_info in self.pools.items()
                if current_time - pool_info["last_used"] > self.connection_timeout
            ]

            for key in expired_keys:
                logger.info("Cleaning up expired pool", pool_key=key)
                del self.pools[key]

            if expired_keys:
                logger.info(f"Cleaned up {len(expired_keys)} expired pools")

    def get_pool_stats(self) -> Dict[str, Any]:
        """Get connection pool statistics."""
        with self.pool_lock:
            stats = {
                "total_pools": len(self.pools),
                "pools": {}
            }

            for key, pool_info in self.pools.items():
                stats["pools"][key] = {
                    "base_url": pool_info["base_url"],
                    "usage_count": pool_info["usage_count"],
                    "age_seconds": time.time() - pool_info["created_at"],
                    "idle_seconds": time.time() - pool_info["last_used"]
                }

            return stats

def connection_pooling_example():
    """Example of connection pooling usage."""

    pool_manager = ConnectionPoolManager(max_connections=5, connection_timeout=60)

    # Make multiple requests to the same base URL
    base_url = BASE_URL

    for i in range(10):
        client_result = pool_manager.get_client(base_url)

        if client_result.success:
            client = client_result.data
            response = client.get(f"/get?request={i}")

            if response.success:
                logger.info(f"Request {i+1} successful via pooled connection")
            else:
                logger.error(f"Request {i+1} failed", error=response.error)

        # Simulate some delay
        time.sleep(0.1)

    # Show pool statistics
    stats = pool_manager.get_pool_stats()
    logger.info("Connection pool statistics", stats=stats)

    # Cleanup expired pools
    pool_manager.cleanup_expired_pools()

# Usage
# connection_pooling_example()  (run by the tests)
