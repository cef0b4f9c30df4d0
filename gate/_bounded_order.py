"""An insertion-ordered set with a cap: the ledger's FIFO forgetting."""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["BoundedOrder"]


class BoundedOrder:
    """Remembers keys in insertion order, at most ``cap`` of them.

    Re-adding a key keeps its place. Adding beyond the cap forgets the oldest.
    All operations are O(1).

    Args:
        cap: The most keys kept, ``>= 1``.
    """

    __slots__ = ("_keys", "cap")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> str | None:
        """Add ``key``.

        Args:
            key: The key.

        Returns:
            The oldest key, if adding went over the cap and it was forgotten.
        """
        self._keys[key] = None
        if len(self._keys) > self.cap:
            oldest, _ = self._keys.popitem(last=False)
            return oldest
        return None

    def discard(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._keys.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
