"""Seed 003, "Testing Patterns": the guide's own tests, run against flext-api's cache.

Changes from the guide: ``my_module`` is the module holding the guide's enricher; the
performance test's wall-clock assertion is left out (speed is measured by ``bench/``,
never asserted in tests); the error-handling test expects what the guide's enricher
does - it has no ``try``, so the cache's ConnectionError reaches its caller.
"""

from __future__ import annotations

import asyncio
from unittest.mock import AsyncMock, patch

import pytest

from flext_api.cache import AsyncSmartCache
from tests.guides.seed.s003_smart_cache import system_info_enricher

MY_MODULE = "tests.guides.seed.s003_smart_cache"


@pytest.mark.asyncio
async def test_async_enricher() -> None:
    """Test async enricher with proper mocking."""

    # Mock the cache
    mock_cache = AsyncMock()
    mock_cache.get_or_compute.return_value = {"hostname": "test-host"}

    with patch(f"{MY_MODULE}._enricher_cache", mock_cache):
        result = await system_info_enricher(None, None, {})

        assert "system_info" in result
        assert result["system_info"]["hostname"] == "test-host"
        mock_cache.get_or_compute.assert_called_once()


@pytest.mark.asyncio
async def test_enricher_error_handling() -> None:
    """The guide's enricher does not catch: a failing cache's error reaches the caller."""

    mock_cache = AsyncMock()
    mock_cache.get_or_compute.side_effect = ConnectionError("Network failed")

    with patch(f"{MY_MODULE}._enricher_cache", mock_cache), pytest.raises(ConnectionError):
        await system_info_enricher(None, None, {})


@pytest.mark.asyncio
async def test_cache_performance() -> None:
    """1000 concurrent callers of one key: one computation, one shared result."""

    cache = AsyncSmartCache()
    call_count = 0

    async def expensive_operation() -> str:
        nonlocal call_count
        call_count += 1
        await asyncio.sleep(0.01)  # Simulate work
        return f"result_{call_count}"

    # Launch many concurrent operations
    tasks = [cache.get_or_compute("test_key", expensive_operation) for _ in range(1000)]

    results = await asyncio.gather(*tasks)

    # Verify performance
    assert len(set(results)) == 1  # All same result (cached)
    assert call_count == 1  # Only called once
    await cache.aclose()
