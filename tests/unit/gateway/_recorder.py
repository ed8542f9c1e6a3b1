"""An in-memory socket transport for the protocol tests: what was written, and closes."""

from __future__ import annotations

from typing import Any

__all__ = ["Recorder"]


class Recorder:
    """A socket transport that keeps what was written."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name)

    def write(self, data: bytes) -> None:
        self.data += data

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.data += part

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        """Nothing to pause."""

    def resume_reading(self) -> None:
        """Nothing to resume."""
