"""The hot path of the shared cache: fresh hits answered without re-parsing the entry.

A stored entry's freshness lifetime, initial age and ready-to-send header lines never
change while it is stored, so they are computed once (:class:`Prepared`) and kept next
to the decoded variants in a bounded in-process memo (memory store only: with Redis
another gateway may change an entry, so every lookup reads the store). A request with
no ``Cache-Control``/``Pragma``, no validators of its own, on a URL with one variant
and no ``Vary``, is then answered by arithmetic: exactly what
:func:`~flext_api.cache._http_spec.on_request` decides for it (fresh and not
``no-cache`` -> use the stored response), without its parsing. Anything else takes the
full RFC 9111 path.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import Scope

from ..cache._http_spec import (
    HttpCachePolicy,
    current_age,
    freshness_lifetime,
    response_cache_control,
)
from ..cache._http_store import StoredResponse

__all__ = ["HotMemo", "Prepared", "plain_request"]

_NOT_SENT = frozenset({"age", "content-length", "x-request-id", "surrogate-control"})
_NOT_PLAIN = frozenset(
    {
        b"cache-control",
        b"pragma",
        b"if-none-match",
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
        b"if-range",
        b"range",
    }
)


@dataclass(frozen=True, slots=True)
class Prepared:
    """What answering from one stored response needs, computed once."""

    stored: StoredResponse
    lifetime: float
    initial_age: float
    no_cache: bool
    headers: tuple[tuple[bytes, bytes], ...]

    @classmethod
    def of(cls, stored: StoredResponse, policy: HttpCachePolicy) -> Prepared:
        """Prepare ``stored`` under ``policy``."""
        pairs = (
            *(
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in stored.headers
                if k.lower() not in _NOT_SENT
            ),
            (b"content-length", str(len(stored.body)).encode()),
        )
        return cls(
            stored=stored,
            lifetime=freshness_lifetime(stored, policy),
            initial_age=current_age(stored, stored.response_time),
            no_cache=response_cache_control(stored.header_map(), policy).no_cache,
            headers=pairs,
        )

    def age(self, now: float) -> float:
        """The response's age at ``now`` (RFC 9111 §4.2.3)."""
        return self.initial_age + max(0.0, now - self.stored.response_time)


def plain_request(scope: Scope) -> bool:
    """True for a GET/HEAD with no directives, validators or ranges of its own."""
    return not any(name in _NOT_PLAIN for name, _ in scope["headers"])


class HotMemo:
    """A bounded LRU of prepared entries by store key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, Prepared] = OrderedDict()

    def get(self, key: str) -> Prepared | None:
        """The prepared single-variant entry of ``key``, if memoized."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, variants: list[StoredResponse], policy: HttpCachePolicy) -> None:
        """Memoize ``key`` when it holds exactly one variant without ``Vary``."""
        if len(variants) != 1 or variants[0].vary:
            self._entries.pop(key, None)
            return
        self._entries[key] = Prepared.of(variants[0], policy)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, key: str | None = None) -> None:
        """Forget ``key`` (everything when None)."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
