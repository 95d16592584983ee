"""State of the fake Slack workspace: messages, ephemerals, files, rate tiers, forced faults."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TIER_LIMITS", "Call", "FakeMessage", "Fault", "RateTiers"]

#: Calls per minute per workspace (Slack's documented tiers for the methods the bridge uses).
TIER_LIMITS: dict[str, int] = {
    "chat.update": 50,  # Tier 3
    "chat.startStream": 20,  # Tier 2
    "chat.stopStream": 20,  # Tier 2
    "chat.appendStream": 100,  # Tier 4
    "chat.postEphemeral": 100,  # Tier 4
    "assistant.threads.setStatus": 50,  # Tier 3 (undocumented; treated as Tier 3)
    "users.info": 100,  # Tier 4
    "conversations.replies": 50,  # Tier 3
    "files.getUploadURLExternal": 20,  # Tier 2
    "files.completeUploadExternal": 20,  # Tier 2
}
#: chat.postMessage: about one per second per channel; short bursts of two tolerated.
POST_BURST = 2


@dataclass
class Call:
    """One Web API call as the fake saw it, with how it was answered."""

    method: str
    args: dict[str, Any]
    status: int = 200
    error: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None


@dataclass
class Fault:
    """A forced failure for the next call(s) of `method`."""

    method: str
    error: str = "ratelimited"
    status: int = 429
    retry_after: float = 1.0
    times: int = 1


@dataclass
class FakeMessage:
    """A message in a channel (top-level or thread reply)."""

    channel: str
    ts: str
    text: str = ""
    thread_ts: str | None = None
    user: str | None = None
    blocks: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    streaming: bool = False
    chunks: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    edits: int = 0

    @property
    def visible_text(self) -> str:
        """What a reader sees: markdown/section block text when there are blocks, else text,
        with Slack's three escapes (`&amp;`, `&lt;`, `&gt;`) shown as the characters."""
        texts = [_block_text(block) for block in self.blocks]
        shown = "\n".join(text for text in texts if text)
        return _unescape(shown or self.text)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.user:
            out["user"] = self.user
        if self.blocks:
            out["blocks"] = self.blocks
        if self.metadata:
            out["metadata"] = self.metadata
        return out


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_text(block: dict[str, Any]) -> str:
    text = block.get("text")
    if isinstance(text, dict):
        return str(text.get("text", ""))
    return str(text or "")


class RateTiers:
    """Sliding windows per method (per minute) and per channel for chat.postMessage."""

    def __init__(self, *, enforce: bool = True) -> None:
        self.enforce = enforce
        self._minute: dict[str, deque[float]] = defaultdict(deque)
        self._posts: dict[str, deque[float]] = defaultdict(deque)

    def admit(self, method: str, channel: str | None) -> float | None:
        """None when the call is within its tier, else the seconds to wait."""
        if not self.enforce:
            return None
        now = time.monotonic()
        if method == "chat.postMessage" and channel:
            return _window(self._posts[channel], now, 1.0, POST_BURST)
        limit = TIER_LIMITS.get(method)
        if limit is None:
            return None
        return _window(self._minute[method], now, 60.0, limit)


def _window(stamps: deque[float], now: float, span: float, limit: int) -> float | None:
    while stamps and stamps[0] <= now - span:
        stamps.popleft()
    if len(stamps) >= limit:
        return max(0.001, stamps[0] + span - now)
    stamps.append(now)
    return None


class TsFactory:
    """Slack-like, strictly increasing message timestamps."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._base = int(time.time())

    def __call__(self) -> str:
        return f"{self._base}.{next(self._counter):06d}"
