"""The entries of one ``AsyncSmartCache`` and the indexes kept in step with them.

One place owns the invariants: every stored :class:`Entry` is in ``entries``, known to
the eviction policy (when there is one), listed under each of its tags, and counted in
``error_count`` while it holds an error. The cache decides *what* to store; this class
keeps the bookkeeping right when entries come, change and go.
"""

from __future__ import annotations

from collections.abc import Callable

from ._policy import EvictionPolicy
from ._smart_parts import Entry

__all__ = ["EntryIndex"]

_SWEEP_MIN = 1024


class EntryIndex:
    """Entries by key, keys by tag, the eviction policy, and the error count."""

    __slots__ = ("_next_sweep", "_writes", "entries", "error_count", "evictions", "policy", "tags")

    def __init__(self, policy: EvictionPolicy | None) -> None:
        self.entries: dict[str, Entry] = {}
        self.tags: dict[str, set[str]] = {}
        self.policy = policy
        self.error_count = 0
        self.evictions = 0
        self._writes = 0
        self._next_sweep = _SWEEP_MIN

    @property
    def sweep_due(self) -> bool:
        """True when enough new keys arrived since the last purge to pay for another."""
        return self._writes >= self._next_sweep

    def entry_for(self, key: str) -> tuple[Entry, bool]:
        """The entry of ``key``, and whether it is new (then :meth:`admit` it once filled)."""
        entry = self.entries.get(key)
        if entry is not None:
            return entry, False
        self._writes += 1
        entry = Entry(key)
        self.entries[key] = entry
        return entry, True

    def admit(self, entry: Entry) -> None:
        """Hand a filled-in new entry to the policy; drop what it evicts (maybe ``entry``)."""
        if self.policy is not None:
            for victim in self.policy.add(entry):
                self.evictions += 1
                self._drop(victim)  # type: ignore[arg-type]  # the policy holds our entries

    def set_error(self, entry: Entry, error: Exception | None) -> None:
        """Put ``error`` in ``entry`` (None clears it), keeping ``error_count`` right."""
        if (entry.error is None) != (error is None):
            self.error_count += 1 if error is not None else -1
        entry.error = error

    def tag(self, entry: Entry, tags: frozenset[str]) -> None:
        """Add ``tags`` to ``entry``."""
        new = tags - entry.tags
        if new:
            entry.tags = entry.tags | new
            for tag in new:
                self.tags.setdefault(tag, set()).add(entry.key)  # type: ignore[arg-type]

    def _drop(self, entry: Entry) -> None:
        key: str = entry.key  # type: ignore[assignment]  # our nodes are keyed by str
        del self.entries[key]
        if entry.error is not None:
            self.error_count -= 1
        for tag in entry.tags:
            keys = self.tags[tag]
            keys.discard(key)
            if not keys:
                del self.tags[tag]

    def remove(self, key: str) -> bool:
        """Forget ``key`` everywhere; True when it was stored."""
        entry = self.entries.get(key)
        if entry is None:
            return False
        if self.policy is not None:
            self.policy.remove(entry)
        self._drop(entry)
        return True

    def purge(self, dead: Callable[[Entry], bool]) -> int:
        """Remove every entry for which ``dead(entry)``; return how many."""
        keys = [key for key, entry in self.entries.items() if dead(entry)]
        for key in keys:
            self.remove(key)
        self._next_sweep = self._writes + max(_SWEEP_MIN, len(self.entries))
        return len(keys)

    def clear(self) -> None:
        """Forget every entry (and the policy's history)."""
        self.entries.clear()
        self.tags.clear()
        self.error_count = 0
        if self.policy is not None:
            self.policy.clear()
