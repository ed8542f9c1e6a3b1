"""Which headers and query parameters of a request carry secrets (set by auth plugins).

Low in the client package, without imports of its own, so that the stages that read
the mark (redirects, observability) do not import the auth plugins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SENSITIVE_EXTENSION", "SensitiveNames"]

#: ``request.extensions`` key holding the :class:`SensitiveNames` of a request.
SENSITIVE_EXTENSION = "flext_api.sensitive"


@dataclass(frozen=True, slots=True)
class SensitiveNames:
    """Lower-case names of headers and query parameters whose values are secret."""

    headers: frozenset[str] = frozenset()
    params: frozenset[str] = frozenset()

    def union(self, headers: Iterable[str] = (), params: Iterable[str] = ()) -> SensitiveNames:
        """A copy that also holds ``headers`` and ``params``."""
        return SensitiveNames(
            self.headers | {h.lower() for h in headers},
            self.params | {p.lower() for p in params},
        )
