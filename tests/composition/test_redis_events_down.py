"""Redis stopped under a running RedisStreamTransport: publish fails with a typed error."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from flext_api import ErrorCode
from flext_api._errors import ConnectError
from flext_api.composition import Event, EventBus, RedisStreamTransport
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration


async def test_publish_with_redis_stopped_is_a_connect_error() -> None:
    """The failure is CONNECT_ERROR (a TransportError), the Redis error its cause."""
    with RedisServer() as own:
        transport = RedisStreamTransport(own.url, stream="t:down", group="g", block=0.05)
        bus = EventBus(transport=transport)
        async with bus:
            assert (await bus.publish(Event("job", {"n": 1}))).is_success
            own.pause()
            result = await bus.publish(Event("job", {"n": 2}))
            assert result.error_code is ErrorCode.CONNECT_ERROR
            assert result.error_code.is_transport
            assert isinstance(result.exception, ConnectError)
            assert isinstance(result.exception.__cause__, RedisConnectionError)
            assert result.exception.details == {"event": "job", "stream": "t:down"}
            assert "publishing event 'job' to stream 't:down' could not reach Redis" in (
                result.error or ""
            )
            assert transport._task is not None and not transport._task.done()


async def test_send_with_redis_stopped_raises_the_typed_error() -> None:
    """transport.send() itself raises the ConnectError (not redis-py's exception)."""
    with RedisServer() as own:
        transport = RedisStreamTransport(own.url, stream="t:down", group="g", block=0.05)
        own.pause()
        try:
            with pytest.raises(ConnectError) as caught:
                await transport.send(Event("job"))
            assert caught.value.code is ErrorCode.CONNECT_ERROR
        finally:
            await transport.stop()
