"""A tiny authoritative DNS responder on 127.0.0.1 (UDP, random port), for tests.

It answers from a dict ``{(name, type): [(ttl, rdata text), ...]}`` using dnspython's
message parsing, counts queries, and can go silent (``down = True``) to play a DNS
outage. It runs in its own thread with its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

HOST = "127.0.0.1"


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram transport

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        if self.server.down or self.transport is None:
            return
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        key = (question.name.to_text().rstrip("."), dns.rdatatype.to_text(question.rdtype))
        self.server.queries[key] += 1
        records = self.server.zone.get(key)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            for ttl, text in records:
                response.answer.append(
                    dns.rrset.from_text(
                        question.name, ttl, dns.rdataclass.IN, question.rdtype, text
                    )
                )
        self.transport.sendto(response.to_wire(), addr)


class DnsServer:
    """Serves ``zone`` over UDP on 127.0.0.1; ``start()`` it, then use ``.port``."""

    def __init__(self, zone: dict[tuple[str, str], list[tuple[int, str]]]) -> None:
        self.zone = zone
        self.queries: Counter[tuple[str, str]] = Counter()
        self.down = False
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DnsServer:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("DNS responder did not start")
        return self

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(HOST, 0)
        )
        self.port = transport.get_extra_info("sockname")[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            transport.close()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
