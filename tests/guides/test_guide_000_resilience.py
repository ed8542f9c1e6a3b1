"""Seed 000: the circuit breaker, retry and connection-pool patterns on the guide's client."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import pytest

from tests.guides.conftest import Events, at_httpbin, without_sleeps
from tests.guides.seed import s000_circuit_breaker as breaker_guide
from tests.guides.seed import s000_pooling as pooling_guide
from tests.guides.seed import s000_retry as retry_guide
from tests.servers.httpbin_server import HttpbinServer

pytestmark = pytest.mark.integration


def _calls(events: Events) -> list[MutableMapping[str, Any]]:
    return [e for e in events.entries if re.match(r"Request \d+: Status", e["event"])]


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch, httpbin_server: HttpbinServer) -> None:
    for module in (breaker_guide, pooling_guide, retry_guide):
        at_httpbin(monkeypatch, module, httpbin_server)
        without_sleeps(monkeypatch, module)


def test_circuit_breaker_opens_after_three_failures(events: Events) -> None:
    """Three 500s reach after_response and open the guide's breaker."""
    breaker_guide.circuit_breaker_example()
    states = [e["circuit_state"] for e in _calls(events)]
    assert states[:3] == ["closed", "closed", "open"]
    assert len(events.named("Circuit breaker OPENED")) == 1


def test_open_circuit_fails_fast_until_recovery_timeout(events: Events) -> None:
    """Within recovery_timeout every later call fails in before_request, 200s included."""
    breaker_guide.circuit_breaker_example()
    outcomes = [e["success"] for e in _calls(events)]
    assert outcomes == [False] * 10
    warnings = events.named("Circuit breaker is OPEN")
    assert len(warnings) == 7
    assert [w["failure_count"] for w in warnings] == [3] * 7


def test_retry_plugin_asks_for_a_resend_of_the_500(events: Events) -> None:
    """In the guide's example the plugin's _should_retry resends /status/500."""
    retry_guide.resilient_client_example()
    counts = [e["retry_count"] for e in events.named("Retrying request")]
    assert counts[0] == 1
    assert counts == list(range(1, len(counts) + 1))


def test_retry_plugin_resends_until_max_retries(
    events: Events, httpbin_server: HttpbinServer
) -> None:
    """With the built-in retry and breaker off, the plugin alone resends five times."""
    from flext_api import create_flext_api

    plugin = retry_guide.AdvancedRetryPlugin(max_retries=5, base_delay=1.0, max_delay=30.0)
    made = create_flext_api().flext_api_create_client_with_plugins(
        {
            "base_url": httpbin_server.url,
            "retry": {"enabled": False},
            "breaker": {"enabled": False},
        },
        [plugin],
    )
    with made.data as client:
        result = client.get("/status/500")
    assert [e["retry_count"] for e in events.named("Retrying request")] == [1, 2, 3, 4, 5]
    (gave_up,) = events.named("Max retries exceeded")
    assert gave_up["retry_count"] == 5
    assert result.is_failure and result.error_code is not None
    assert result.error_code.value == "HTTP_STATUS"


def test_resilient_client_outcomes(events: Events) -> None:
    """As typed, with the default pipeline (breaker on): GET /get, GET /delay/2 and
    POST /post succeed; /status/500 fails after the plugin's five retries."""
    retry_guide.resilient_client_example()
    outcome = re.compile(r".* ((?:GET|POST) \S+) (successful|failed)$")
    seen = [m.groups() for e in events.entries if (m := outcome.match(e["event"]))]
    assert seen == [
        ("GET /get", "successful"),
        ("GET /status/500", "failed"),
        ("GET /delay/2", "successful"),
        ("POST /post", "successful"),
    ]
    assert [e["retry_count"] for e in events.named("Retrying request")] == [1, 2, 3, 4, 5]
    failed = [e for e in events.entries if e["event"].endswith("/status/500 failed")]
    assert "500" in failed[0]["error"]


def test_connection_pool_reuses_one_client(events: Events) -> None:
    """Ten requests to one base URL share one pooled client; all succeed."""
    pooling_guide.connection_pooling_example()
    assert len(events.named("New connection pool created")) == 1
    reuse = events.named("Reusing connection from pool")
    assert [e["usage_count"] for e in reuse] == list(range(2, 11))
    done = [e for e in events.entries if e["event"].endswith("via pooled connection")]
    assert len(done) == 10
    (stats,) = events.named("Connection pool statistics")
    assert stats["stats"]["total_pools"] == 1
