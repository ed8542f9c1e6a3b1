"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

import random
import time
from typing import List, Callable, Any
from typing import Dict  # missing from the guide (it uses Dict below)
from flext_api import create_flext_api, FlextApiPlugin
from flext_api import FlextResult, get_logger  # the guide: from flext_core

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

class AdvancedRetryPlugin(FlextApiPlugin):
    """Advanced retry plugin with exponential backoff and jitter."""

    def __init__(self,
                 max_retries: int = 3,
                 base_delay: float = 1.0,
                 max_delay: float = 60.0,
                 exponential_base: float = 2.0,
                 jitter: bool = True,
                 retry_conditions: List[Callable[[Any], bool]] = None):

        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.exponential_base = exponential_base
        self.jitter = jitter
        self.retry_conditions = retry_conditions or [
            lambda r: r.get("status_code", 0) in [408, 429, 500, 502, 503, 504],
            lambda r: "timeout" in str(r.get("error", "")).lower(),
            lambda r: "connection" in str(r.get("error", "")).lower()
        ]

    def after_response(self, response: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Handle response with advanced retry logic."""

        # Check if retry is needed
        should_retry = any(condition(response) for condition in self.retry_conditions)

        if not should_retry:
            return FlextResult.ok(response)

        # Get retry count from response metadata
        retry_count = response.get("_retry_count", 0)

        if retry_count >= self.max_retries:
            logger.warning("Max retries exceeded",
                          retry_count=retry_count,
                          max_retries=self.max_retries)
            return FlextResult.ok(response)

        # Calculate delay with exponential backoff and jitter
        delay = self._calculate_delay(retry_count)

        logger.info("Retrying request",
                   retry_count=retry_count + 1,
                   max_retries=self.max_retries,
                   delay_seconds=delay)

        # Sleep before retry (in real implementation, this would be handled by the client)
        time.sleep(delay)

        # Mark response for retry
        response["_should_retry"] = True
        response["_retry_count"] = retry_count + 1
        response["_retry_delay"] = delay

        return FlextResult.ok(response)

    def _calculate_delay(self, retry_count: int) -> float:
        """Calculate delay with exponential backoff and optional jitter."""

        # Exponential backoff
        delay = self.base_delay * (self.exponential_base ** retry_count)

        # Apply maximum delay limit
        delay = min(delay, self.max_delay)

        # Add jitter to avoid thundering herd
        if self.jitter:
            # Full jitter: random delay between 0 and calculated delay
            delay = random.uniform(0, delay)

        return delay

class ResilientHttpClient:
    """HTTP client with advanced resilience patterns."""

    def __init__(self, base_url: str):
        self.api = create_flext_api()
        self.base_url = base_url
        self.client = None

        # Resilience plugins
        self.retry_plugin = AdvancedRetryPlugin(
            max_retries=5,
            base_delay=1.0,
            max_delay=30.0,
            exponential_base=2.0,
            jitter=True
        )

        self._initialize_client()

    def _initialize_client(self):
        """Initialize resilient client."""
        client_result = self.api.flext_api_create_client_with_plugins(
            {
                "base_url": self.base_url,
                "timeout": 30,
                "headers": {"User-Agent": "ResilientClient/0.9.0"}
            },
            [self.retry_plugin]
        )

        if client_result.success:
            self.client = client_result.data
            logger.info("Resilient client initialized")
        else:
            logger.error("Client initialization failed", error=client_result.error)
            raise RuntimeError(f"Client initialization failed: {client_result.error}")

    def resilient_request(self, method: str, path: str, **kwargs) -> FlextResult[Dict[str, Any]]:
        """Make resilient request with advanced error handling."""

        max_attempts = 3
        for attempt in range(max_attempts):
            try:
                if method.upper() == "GET":
                    response = self.client.get(path, **kwargs)
                elif method.upper() == "POST":
                    response = self.client.post(path, **kwargs)
                else:
                    return FlextResult.fail(f"Unsupported method: {method}")

                if response.success:
                    logger.info("Resilient request successful",
                               method=method,
                               path=path,
                               attempt=attempt + 1)
                    return response

                # Handle specific error cases
                if "timeout" in response.error.lower():
                    logger.warning("Request timeout", attempt=attempt + 1)
                    if attempt < max_attempts - 1:
                        time.sleep(2 ** attempt)  # Exponential backoff
                        continue

                return response

            except Exception as e:
                logger.exception("Request attempt failed", attempt=attempt + 1)
                if attempt < max_attempts - 1:
                    time.sleep(2 ** attempt)
                    continue
                return FlextResult.fail(f"All attempts failed: {e}")

        return FlextResult.fail("All resilience attempts exhausted")

def resilient_client_example():
    """Example of resilient HTTP client usage."""

    client = ResilientHttpClient(BASE_URL)

    # Test with various scenarios
    test_cases = [
        ("GET", "/get", {}),
        ("GET", "/status/500", {}),  # Should trigger retry
        ("GET", "/delay/2", {}),     # Should work with timeout handling
        ("POST", "/post", {"json": {"test": "data"}}),
    ]

    for method, path, kwargs in test_cases:
        logger.info(f"Testing {method} {path}")
        response = client.resilient_request(method, path, **kwargs)

        if response.success:
            logger.info(f"‚úÖ {method} {path} successful")
        else:
            logger.error(f"‚ùå {method} {path} failed", error=response.error)

# Usage
# resilient_client_example()  (run by the tests)
