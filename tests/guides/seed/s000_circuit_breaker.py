"""Seed 000 (Advanced Patterns), verbatim but for the URL and the logger import."""

from flext_api import FlextApiPlugin, create_flext_api
from flext_api import FlextResult, get_logger  # the guide: from flext_core
from typing import Dict, Any
import time
from enum import Enum

logger = get_logger(__name__)

# The guide calls https://httpbin.org; the tests point this at the local httpbin server.
BASE_URL = "https://httpbin.org"

class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

class AdvancedCircuitBreakerPlugin(FlextApiPlugin):
    """Advanced circuit breaker with exponential backoff and health checking."""

    def __init__(self,
                 failure_threshold: int = 5,
                 recovery_timeout: int = 60,
                 half_open_max_calls: int = 3):
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls

        self.failure_count = 0
        self.success_count = 0
        self.last_failure_time = 0
        self.state = CircuitState.CLOSED
        self.half_open_calls = 0

    def before_request(self, request_config: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Check circuit state before request."""
        current_time = time.time()

        if self.state == CircuitState.OPEN:
            if current_time - self.last_failure_time > self.recovery_timeout:
                self._transition_to_half_open()
            else:
                remaining_time = self.recovery_timeout - (current_time - self.last_failure_time)
                logger.warning("Circuit breaker is OPEN",
                              remaining_time=remaining_time,
                              failure_count=self.failure_count)
                return FlextResult.fail(f"Circuit breaker OPEN. Retry in {remaining_time:.1f}s")

        if self.state == CircuitState.HALF_OPEN:
            if self.half_open_calls >= self.half_open_max_calls:
                logger.warning("Half-open call limit reached")
                return FlextResult.fail("Circuit breaker half-open call limit reached")

            self.half_open_calls += 1
            logger.info("Half-open request allowed", calls=self.half_open_calls)

        return FlextResult.ok(request_config)

    def after_response(self, response: Dict[str, Any]) -> FlextResult[Dict[str, Any]]:
        """Update circuit state based on response."""
        status_code = response.get("status_code", 0)
        success = 200 <= status_code < 300

        if success:
            self._handle_success()
        else:
            self._handle_failure()

        return FlextResult.ok(response)

    def _handle_success(self):
        """Handle successful response."""
        if self.state == CircuitState.HALF_OPEN:
            self.success_count += 1
            if self.success_count >= self.half_open_max_calls:
                self._transition_to_closed()
        elif self.state == CircuitState.CLOSED:
            # Reset failure count on success
            if self.failure_count > 0:
                self.failure_count = max(0, self.failure_count - 1)
                logger.debug("Failure count decremented", count=self.failure_count)

    def _handle_failure(self):
        """Handle failed response."""
        self.failure_count += 1
        self.last_failure_time = time.time()

        if self.state == CircuitState.HALF_OPEN:
            self._transition_to_open()
        elif self.state == CircuitState.CLOSED and self.failure_count >= self.failure_threshold:
            self._transition_to_open()

        logger.warning("Request failure recorded",
                      failure_count=self.failure_count,
                      state=self.state.value)

    def _transition_to_open(self):
        """Transition circuit to OPEN state."""
        self.state = CircuitState.OPEN
        self.half_open_calls = 0
        logger.error("Circuit breaker OPENED",
                    failure_count=self.failure_count,
                    recovery_timeout=self.recovery_timeout)

    def _transition_to_half_open(self):
        """Transition circuit to HALF_OPEN state."""
        self.state = CircuitState.HALF_OPEN
        self.half_open_calls = 0
        self.success_count = 0
        logger.info("Circuit breaker transitioned to HALF_OPEN")

    def _transition_to_closed(self):
        """Transition circuit to CLOSED state."""
        self.state = CircuitState.CLOSED
        self.failure_count = 0
        self.success_count = 0
        self.half_open_calls = 0
        logger.info("Circuit breaker CLOSED - service recovered")

def circuit_breaker_example():
    """Example using advanced circuit breaker."""

    api = create_flext_api()
    circuit_breaker = AdvancedCircuitBreakerPlugin(
        failure_threshold=3,
        recovery_timeout=10,
        half_open_max_calls=2
    )

    client_result = api.flext_api_create_client_with_plugins(
        {
            "base_url": BASE_URL,
            "timeout": 5
        },
        [circuit_breaker]
    )

    if client_result.success:
        client = client_result.data

        # Test circuit breaker with failing requests
        logger.info("Testing circuit breaker with failing requests")
        for i in range(10):
            # Use status endpoint to simulate failures
            status_code = 500 if i < 5 else 200
            response = client.get(f"/status/{status_code}")

            logger.info(f"Request {i+1}: Status {status_code}",
                       success=response.success,
                       circuit_state=circuit_breaker.state.value)

            time.sleep(1)  # Allow time for recovery testing

    return client_result

# Usage
# circuit_result = circuit_breaker_example()  (run by the tests)
