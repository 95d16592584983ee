"""Small shared helpers of the emulator: stable ids, timestamps, SSE framing."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "NAMESPACE",
    "IdFactory",
    "agent_id",
    "dumps",
    "epoch",
    "organization_id",
    "utc_iso",
]

#: Namespace of every uuid5 the emulator derives (agent ids, organization id, seeded ids).
NAMESPACE = uuid.UUID("1899fa43-844e-5b6a-9053-4f21e58327c5")


def agent_id(name: str) -> str:
    """The stable id of the agent called `name`: `uuid5(NAMESPACE, name)`."""
    return str(uuid.uuid5(NAMESPACE, name))


def organization_id() -> str:
    """The default organization id: `uuid5(NAMESPACE, "organization")`."""
    return str(uuid.uuid5(NAMESPACE, "organization"))


def utc_iso(at: float | None = None) -> str:
    """An ISO 8601 UTC timestamp with microseconds and a `Z` suffix (spec conventions)."""
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch() -> int:
    """Unix epoch seconds, the timestamp format of thread messages."""
    return int(time.time())


def dumps(value: Any) -> str:
    """Compact single-line JSON (newlines inside strings are escaped by `json`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class IdFactory:
    """Task ids: random UUIDs, or reproducible uuid5 values when a seed is given.

    Random is the default because a restarted standalone emulator must not hand out
    an id that a persistent session store still maps to an older conversation.
    """

    def __init__(self, seed: int | str | None = None) -> None:
        self._seed = seed
        self._counter = itertools.count(1)

    def task_id(self) -> str:
        if self._seed is None:
            return str(uuid.uuid4())
        return str(uuid.uuid5(NAMESPACE, f"{self._seed}:task:{next(self._counter)}"))

    @staticmethod
    def derived(*parts: object) -> str:
        """A stable id derived from `parts` (tool-call request ids and the like)."""
        return str(uuid.uuid5(NAMESPACE, ":".join(str(part) for part in parts)))
