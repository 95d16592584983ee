"""Saving and loading the emulator's threads, so the embedded emulator behind `bridge chat`
keeps conversations across runs (`--thread ID` then continues a thread with its history).

Only finished turns are saved; their SSE logs are not (nothing streams them again).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from bridge._private import write_private
from bridge.emulator._emulator import Emulator
from bridge.emulator._state import TaskRecord, Turn

__all__ = ["load_state", "save_state"]

logger = logging.getLogger(__name__)

_TURN_FIELDS = (
    "number", "agent_id", "input", "source", "request", "agent_version", "base_url", "status",
    "result", "created_at", "started_at", "paused_at", "finished_at", "is_manually_stopped",
    "hitl_request", "tokens",
)  # fmt: skip


def save_state(emulator: Emulator, path: Path) -> None:
    """Write every thread's finished turns to `path` (atomically)."""
    threads: list[dict[str, Any]] = []
    for record in emulator.tasks.values():
        turns = [
            {name: getattr(turn, name) for name in _TURN_FIELDS}
            for turn in record.turns
            if turn.is_terminal
        ]
        if not turns:
            continue
        threads.append(
            {
                "id": record.id,
                "organization_id": record.organization_id,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
                "messages": record.messages,
                "full_messages": record.full_messages,
                "turns": turns,
            }
        )
    write_private(path, json.dumps({"version": 1, "threads": threads}))


def load_state(emulator: Emulator, path: Path) -> int:
    """Restore threads saved by `save_state`; returns how many. A missing or unreadable
    file starts empty (logged), since the emulator's history is a convenience."""
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable emulator state %s: %s", path, exc)
        return 0
    restored = 0
    for thread in saved.get("threads", []):
        try:
            turns = [
                Turn(**{name: raw.get(name) for name in _TURN_FIELDS if name in raw})
                for raw in thread["turns"]
            ]
            for turn in turns:
                turn.closed = True
                turn.done.set()
            record = TaskRecord(
                id=thread["id"],
                organization_id=thread["organization_id"],
                turns=turns,
                created_at=thread["created_at"],
                updated_at=thread["updated_at"],
                messages=thread["messages"],
                full_messages=thread["full_messages"],
            )
        except (KeyError, TypeError) as exc:
            logger.warning("skipping a malformed saved thread in %s: %s", path, exc)
            continue
        emulator.tasks[record.id] = record
        restored += 1
    return restored
