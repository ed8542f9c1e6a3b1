"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

import time
import hashlib
import json
from typing import Dict, Any, Optional
from dataclasses import dataclass, asdict
from flext_api import create_flext_api, FlextApiPlugin
from flext_api import FlextResult, get_logger  # the guide: from flext_core

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

@dataclass
class CacheEntry:
    """Cache entry with TTL and metadata."""
    data: Dict[str, Any]
    created_at: float
    ttl: int
    hit_count: int = 0
    last_accessed: float = 0.0

    def is_expired(self) -> bool:
        return time.time() - self.created_at > self.ttl

    def access(self) -> Dict[str, Any]:
        self.hit_count += 1
        self.last_accessed = time.time()
        return self.data

class AdvancedCachingPlugin(FlextApiPlugin):
    """Advanced caching plugin with TTL, LRU, and statistics."""

    def __init__(self,
                 ttl: int = 300,
                 max_entries: int = 1000,
                 cache_get: bool = True,
                 cache_post: bool = False):

        self.ttl = ttl
        self.max_entries = max_entries
        self.cache_get = cache_get
        self.cache_post = cache_post
        self.cache: Dict[str, CacheEntry] = {}

        # Statistics
        self.stats = {
            "hits": 0,
            "misses": 0,
            "expired": 0,
            "evictions": 0
        }

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Check cache before making request."""

        method = request_config.get("method", "GET").upper()

        # Only cache GET requests by default
        if method == "GET" and not self.cache_get:
            return FlextResult.ok(request_config)
        if method == "POST" and not self.cache_post:
            return FlextResult.ok(request_config)

        cache_key = self._generate_cache_key(request_config)

        # Check if cached response exists
        if cache_key in self.cache:
            entry = self.cache[cache_key]

            if entry.is_expired():
                logger.debug("Cache entry expired", cache_key=cache_key[:16])
                del self.cache[cache_key]
                self.stats["expired"] += 1
            else:
                # Cache hit
                cached_data = entry.access()
                self.stats["hits"] += 1

                logger.info("Cache hit",
                           cache_key=cache_key[:16],
                           hit_count=entry.hit_count,
                           age_seconds=time.time() - entry.created_at)

                # Return cached response (mark as cached)
                cached_response = {
                    **cached_data,
                    "_from_cache": True,
                    "_cache_key": cache_key,
                    "_cache_age": time.time() - entry.created_at
                }

                # Skip actual request by setting special flag
                request_config["_skip_request"] = True
                request_config["_cached_response"] = cached_response

        self.stats["misses"] += 1
        return FlextResult.ok(request_config)

    def after_response(self, response: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Cache successful responses."""

        # Don't cache if request was skipped (cache hit)
        if response.get("_from_cache"):
            return FlextResult.ok(response)

        # Only cache successful responses
        status_code = response.get("status_code", 0)
        if not (200 <= status_code < 300):
            return FlextResult.ok(response)

        # Get original request config from response metadata
        request_config = response.get("_request_config", {})
        method = request_config.get("method", "GET").upper()

        if method == "GET" and self.cache_get:
            self._cache_response(request_config, response)
        elif method == "POST" and self.cache_post:
            self._cache_response(request_config, response)

        return FlextResult.ok(response)

    def _cache_response(self, request_config: Dict[str, Any], response: Dict[str, Any]):
        """Cache the response."""

        cache_key = self._generate_cache_key(request_config)

        # Check if we need to evict entries
        if len(self.cache) >= self.max_entries:
            self._evict_lru_entry()

        # Create cache entry
        cache_data = {
            "status_code": response.get("status_code"),
            "data": response.get("data"),
            "headers": response.get("headers", {})
        }

        entry = CacheEntry(
            data=cache_data,
            created_at=time.time(),
            ttl=self.ttl
        )

        self.cache[cache_key] = entry

        logger.debug("Response cached",
                    cache_key=cache_key[:16],
                    cache_size=len(self.cache),
                    ttl=self.ttl)

    def _generate_cache_key(self, request_config: Dict[str, Any]) -> str:
        """Generate cache key from request configuration."""

        # Create normalized key from method, URL, and parameters
        key_data = {
            "method": request_config.get("method", "GET"),
            "url": request_config.get("url", ""),
            "params": request_config.get("params", {}),
            "headers": {k: v for k, v in request_config.get("headers", {}).items()
                       if k.lower() not in ["authorization", "cookie"]}  # Exclude auth headers
        }

        key_str = json.dumps(key_data, sort_keys=True)
        return hashlib.sha256(key_str.encode()).hexdigest()

    def _evict_lru_entry(self):
        """Evict least recently used cache entry."""

        if not self.cache:
            return

        # Find LRU entry
        lru_key = min(self.cache.keys(),
                     key=lambda k: self.cache[k].last_accessed or self.cache[k].created_at)

        logger.debug("Evicting LRU cache entry", cache_key=lru_key[:16])
        del self.cache[lru_key]
        self.stats["evictions"] += 1

    def get_cache_stats(self) -> Dict[str, Any]:
        """Get cache statistics."""

        total_requests = self.stats["hits"] + self.stats["misses"]
        hit_rate = (self.stats["hits"] / total_requests * 100) if total_requests > 0 else 0

        return {
            **self.stats,
            "cache_size": len(self.cache),
            "hit_rate_percent": round(hit_rate, 2),
            "total_requests": total_requests
        }

    def clear_cache(self):
        """Clear all cache entries."""
        self.cache.clear()
        logger.info("Cache cleared")

def advanced_caching_example():
    """Example of advanced caching usage."""

    # Create caching plugin
    caching_plugin = AdvancedCachingPlugin(
        ttl=60,  # 60 second TTL
        max_entries=100,
        cache_get=True,
        cache_post=False
    )

    # Create API with caching
    api = create_flext_api()
    client_result = api.flext_api_create_client_with_plugins(
        {
            "base_url": BASE_URL,
            "timeout": 10
        },
        [caching_plugin]
    )

    if not client_result.success:
        logger.error("Failed to create cached client")
        return

    client = client_result.data

    # Make requests to test caching
    test_urls = ["/get", "/json", "/headers", "/get", "/json"]  # Repeat some URLs

    for i, url in enumerate(test_urls):
        logger.info(f"Request {i+1}: {url}")
        response = client.get(url, params={"request": i})

        if response.success:
            is_cached = response.data.get("_from_cache", False)
            cache_age = response.data.get("_cache_age", 0)

            logger.info(f"‚úÖ Request successful",
                       cached=is_cached,
                       cache_age=f"{cache_age:.2f}s" if is_cached else "N/A")
        else:
            logger.error(f"‚ùå Request failed", error=response.error)

        time.sleep(0.5)  # Small delay between requests

    # Show cache statistics
    stats = caching_plugin.get_cache_stats()
    logger.info("Cache statistics", **stats)

# Usage
# advanced_caching_example()  (run by the tests)
