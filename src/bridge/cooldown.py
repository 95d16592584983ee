"""`Cooldown`: a feature set aside after a failure and tried again once a pause has passed.

Used for platform streaming (Telegram drafts, Slack native streams): one failed call
sends that answer down the plain path, and streaming is retried after the pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

__all__ = ["Cooldown"]


class Cooldown:
    """Keys paused for `seconds` after a failure; `clock` is monotonic seconds."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._until: dict[Hashable, float] = {}

    def is_paused(self, key: Hashable = None) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if self._clock() >= until:
            del self._until[key]
            return False
        return True

    def pause(self, key: Hashable = None) -> None:
        """Set `key` aside for `seconds` from now."""
        self._until[key] = self._clock() + self.seconds
