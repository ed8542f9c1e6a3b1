"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

import asyncio
from typing import List, Dict, Any
from flext_api import create_flext_api
from flext_api import FlextResult, get_logger  # the guide: from flext_core

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

class AsyncFlextApiWrapper:
    """Async wrapper for FLEXT API operations."""

    def __init__(self, base_url: str):
        self.api = create_flext_api()
        self.base_url = base_url
        self.client = None

    async def initialize(self) -> FlextResult[bool]:
        """Initialize the async client."""
        loop = asyncio.get_event_loop()

        # Run client creation in thread pool to avoid blocking
        client_result = await loop.run_in_executor(None, self._create_client)

        if client_result.success:
            self.client = client_result.data
            logger.info("Async client initialized")
            return FlextResult.ok(data=True)
        else:
            logger.error("Async client initialization failed", error=client_result.error)
            return FlextResult.fail(client_result.error)

    def _create_client(self):
        """Create client (runs in thread pool)."""
        return self.api.flext_api_create_client({
            "base_url": self.base_url,
            "timeout": 30
        })

    async def get_async(self, path: str, **kwargs) -> FlextResult[Dict[str, Any]]:
        """Async GET request."""
        if not self.client:
            return FlextResult.fail("Client not initialized")

        loop = asyncio.get_event_loop()
        response = await loop.run_in_executor(None, self.client.get, path, kwargs)

        return response

    async def post_async(self, path: str, **kwargs) -> FlextResult[Dict[str, Any]]:
        """Async POST request."""
        if not self.client:
            return FlextResult.fail("Client not initialized")

        loop = asyncio.get_event_loop()
        response = await loop.run_in_executor(None, self.client.post, path, kwargs)

        return response

async def concurrent_requests_example():
    """Example of concurrent HTTP requests."""

    client = AsyncFlextApiWrapper(BASE_URL)
    init_result = await client.initialize()

    if not init_result.success:
        logger.error("Failed to initialize async client")
        return

    # Create multiple concurrent requests
    tasks = []
    urls = ["/get", "/json", "/headers", "/user-agent", "/ip"]

    for url in urls:
        task = client.get_async(url)
        tasks.append(task)

    logger.info(f"Starting {len(tasks)} concurrent requests")

    # Execute all requests concurrently
    results = await asyncio.gather(*tasks, return_exceptions=True)

    # Process results
    successful_requests = 0
    for i, result in enumerate(results):
        if isinstance(result, Exception):
            logger.error(f"Request {i+1} failed with exception", error=str(result))
        elif result.success:
            successful_requests += 1
            logger.info(f"Request {i+1} successful", url=urls[i])
        else:
            logger.error(f"Request {i+1} failed", url=urls[i], error=result.error)

    logger.info(f"Concurrent requests completed: {successful_requests}/{len(tasks)} successful")

# Usage
# asyncio.run(concurrent_requests_example())
