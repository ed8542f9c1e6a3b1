"""Request IDs: validate or generate one per request.

An inbound ``X-Request-ID`` is kept only when it matches ``[A-Za-z0-9._:-]{1,128}``
(UUIDs, ULIDs, hex, the ``host:pid:n`` style) and appears once; anything else - too
long, CR/LF, spaces, quotes, non-ASCII, two headers - is replaced by a fresh UUID4 (32
hex digits) rather than trusted, because the ID is echoed in a response header and
written into every log line (asgi-correlation-id also replaces; fapilog and
nexios_contrib trust it verbatim). A well-formed W3C ``traceparent`` is read alongside
(version 00; a later one, read with version 00's layout as the spec asks, is passed on
as version 00).

The middleware that exposes them is :class:`~._observed.ObservedRequestMiddleware`.
"""

from __future__ import annotations

import os
import re

from starlette.types import Scope

__all__ = ["REQUEST_ID_PATTERN", "new_request_id", "read_request_id"]

REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT = re.compile(rb"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
# A later version (not ff, which is invalid): W3C Trace Context §4.3 has it read with
# version 00's layout, anything after the flags past a dash ignored; it is then passed on
# as version 00, the one this side speaks.
_LATER_TRACEPARENT = re.compile(
    rb"(?!00|ff)[0-9a-f]{2}-((?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2})(?:-.*)?",
    re.DOTALL,
)


# UUID4s are made 256 at a time: one os.urandom call, the version and variant bits set
# in two C-level passes (byte 6: 0100xxxx, byte 8: 10xxxxxx, as uuid.uuid4 sets them), one
# hex() of the whole block; a request then takes a 32-character slice. Per request that is
# a slice instead of a system call, an int and a format.
_BATCH = 256
_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT_RFC = bytes((b & 0x3F) | 0x80 for b in range(256))


def _uuid4_hex_block(count: int) -> str:
    """``count`` random UUID4s as one string of ``32 * count`` hex digits."""
    block = bytearray(os.urandom(16 * count))
    block[6::16] = block[6::16].translate(_VERSION_4)
    block[8::16] = block[8::16].translate(_VARIANT_RFC)
    return block.hex()


class _RequestIds:
    """Hands out the UUID4s of the current block, making a new one when it runs out."""

    __slots__ = ("_block", "_next")

    def __init__(self) -> None:
        self._block = ""
        self._next = 0

    def reset(self) -> None:
        """Drop the block (a forked child must not repeat its parent's IDs)."""
        self._block = ""
        self._next = 0

    def __call__(self) -> str:
        start = self._next
        if start == len(self._block):
            self._block = _uuid4_hex_block(_BATCH)
            start = 0
        self._next = start + 32
        return self._block[start : start + 32]


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.reset)


def new_request_id() -> str:
    """A random UUID4 as 32 hex digits (what ``uuid4().hex`` gives)."""
    return _ids()


def read_request_id(scope: Scope, header: bytes) -> tuple[str, bytes, str | None]:
    """``(request_id, encoded_id, traceparent_or_None)`` for the request in ``scope``."""
    raw = scope["headers"]
    headers = dict(raw)  # one C-level pass; the last of repeated names wins
    inbound = headers.get(header)
    if inbound is not None and sum(1 for name, _ in raw if name == header) > 1:
        inbound = None  # two IDs: trust neither
    if inbound is not None and REQUEST_ID_PATTERN.fullmatch(inbound):
        encoded = inbound
        request_id = inbound.decode("ascii")
    else:
        request_id = _ids()
        encoded = request_id.encode("ascii")
    traceparent = headers.get(b"traceparent")
    trace = None
    if traceparent is not None:
        if _TRACEPARENT.fullmatch(traceparent):
            trace = traceparent.decode("ascii")
        elif (later := _LATER_TRACEPARENT.fullmatch(traceparent)) is not None:
            trace = "00-" + later[1].decode("ascii")
    return request_id, encoded, trace
