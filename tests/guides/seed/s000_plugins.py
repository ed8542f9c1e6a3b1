"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

from flext_api import FlextApiPlugin, create_flext_api
from flext_api import FlextResult, get_logger  # the guide: from flext_core
from typing import Dict, Any, Optional
import time
import hashlib

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

class RequestLoggingPlugin(FlextApiPlugin):
    """Advanced logging plugin with request/response tracking."""

    def __init__(self, log_level: str = "INFO", include_body: bool = False):
        self.log_level = log_level
        self.include_body = include_body
        self.request_times = {}

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Log and track request before execution."""
        request_id = self._generate_request_id(request_config)
        self.request_times[request_id] = time.time()

        log_data = {
            "request_id": request_id,
            "method": request_config.get("method", "GET"),
            "url": request_config.get("url", ""),
            "headers": request_config.get("headers", {})
        }

        if self.include_body and "json" in request_config:
            log_data["body"] = request_config["json"]

        logger.info("HTTP request starting", **log_data)
        request_config["_request_id"] = request_id

        return FlextResult.ok(request_config)

    def after_response(self, response: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Log response and calculate request duration."""
        request_id = response.get("_request_id")
        if request_id and request_id in self.request_times:
            duration = time.time() - self.request_times[request_id]
            del self.request_times[request_id]

            log_data = {
                "request_id": request_id,
                "status_code": response.get("status_code", 0),
                "duration_ms": round(duration * 1000, 2),
                "response_size": len(str(response.get("content", "")))
            }

            if self.include_body and "data" in response:
                log_data["response_data"] = response["data"]

            logger.info("HTTP request completed", **log_data)

        return FlextResult.ok(response)

    def _generate_request_id(self, request_config: Dict[str, Any]) -> str:
        """Generate unique request ID."""
        content = f"{request_config.get('method', 'GET')}{request_config.get('url', '')}{time.time()}"
        return hashlib.md5(content.encode()).hexdigest()[:8]

class RequestThrottlingPlugin(FlextApiPlugin):
    """Advanced throttling plugin with sliding window rate limiting."""

    def __init__(self, max_requests: int = 100, window_seconds: int = 60):
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.request_times = []

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Check rate limit before request."""
        current_time = time.time()

        # Remove old requests outside the window
        self.request_times = [
            req_time for req_time in self.request_times
            if current_time - req_time < self.window_seconds
        ]

        # Check if we're over the limit
        if len(self.request_times) >= self.max_requests:
            oldest_request = min(self.request_times)
            wait_time = self.window_seconds - (current_time - oldest_request)
            logger.warning("Rate limit exceeded",
                          requests_in_window=len(self.request_times),
                          wait_time_seconds=wait_time)
            return FlextResult.fail(f"Rate limit exceeded. Wait {wait_time:.1f} seconds")

        # Add current request to tracking
        self.request_times.append(current_time)
        logger.debug("Request allowed",
                    requests_in_window=len(self.request_times),
                    max_requests=self.max_requests)

        return FlextResult.ok(request_config)

def advanced_plugin_example():
    """Example using advanced custom plugins."""

    api = create_flext_api()

    # Create plugins
    logging_plugin = RequestLoggingPlugin(log_level="INFO", include_body=True)
    throttling_plugin = RequestThrottlingPlugin(max_requests=10, window_seconds=60)

    plugins = [logging_plugin, throttling_plugin]

    # Create client with plugins
    client_result = api.flext_api_create_client_with_plugins(
        {
            "base_url": BASE_URL,
            "timeout": 30
        },
        plugins
    )

    if client_result.success:
        client = client_result.data
        logger.info("Client with advanced plugins created")

        # Make requests to test plugins
        for i in range(5):
            response = client.get(f"/get?request={i}")
            if response.success:
                logger.info(f"Request {i+1} completed successfully")
            else:
                logger.error(f"Request {i+1} failed", error=response.error)

            time.sleep(0.1)  # Small delay between requests

    return client_result

# Usage
# plugin_result = advanced_plugin_example()  (run by the tests)
