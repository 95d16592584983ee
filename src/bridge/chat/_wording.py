"""The one final-answer rule and the one wording of turns that did not complete, shared by
every surface so the same upstream task reads the same everywhere; and what the chat flow
tells users (`ChatWording`), which a surface may word its own way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bridge import errors
from bridge.models import Task

__all__ = [
    "NOT_SHOWN_TEXT",
    "ChatWording",
    "Failure",
    "failure_of",
    "final_answer",
]

NOT_SHOWN_TEXT = "⚠️ The answer could not be shown."
"""What the user reads when rendering or delivering their answer failed."""

EMPTY_TEXT = "(no answer)"


def final_answer(task: Task | None, streamed: str) -> str:
    """The task's `result`, else the text streamed so far, else a visible "(no answer)"."""
    if task is not None and task.result and task.result.strip():
        return task.result
    return streamed if streamed.strip() else EMPTY_TEXT


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a turn ended without its answer, and the text every surface shows for it."""

    kind: Literal["stopped", "failed", "timed_out", "unavailable", "not_shown"]
    status: str
    text: str


def failure_of(error: errors.UpstreamError | None = None) -> Failure:
    """The failure for an upstream error (None: the answer could not be shown)."""
    if error is None:
        return Failure("not_shown", "error", NOT_SHOWN_TEXT)
    if isinstance(error, errors.RunFailedError):
        if error.status == "stopped":
            return Failure("stopped", "stopped", "⏹ Stopped.")
        detail = f": {error.task.result}" if error.task.result else "."
        text = f"⚠️ The agent could not finish ({error.status}){detail}"
        return Failure("failed", error.status, text)
    if isinstance(error, errors.UpstreamTimeoutError):
        text = "⚠️ The agent took too long to answer. Please try again in a moment."
        return Failure("timed_out", "timed_out", text)
    text = "⚠️ The agent platform did not answer. Please try again in a moment."
    return Failure("unavailable", "error", text)


@dataclass(frozen=True)
class ChatWording:
    """What the chat flow tells users. Notes are in the surface's markup (see
    `ChatService.notify`); `{name}` in `no_agent`, `too_large` and `unreadable` is user text,
    already through `ChatService.quote`."""

    not_allowed: str | None = None
    """Told to a sender not on the allow-lists (None: they are ignored, as bots usually do)."""
    too_fast: str = "⏳ You are sending messages faster than I can take them; please slow down."
    queued: str = "⏳ I'll answer this after the current reply; yours is next."
    dropped: str = (
        "⚠️ Too many messages are waiting for this conversation: I dropped this one. "
        "Send it again once I have answered."
    )
    not_yours: str = "Only the person who asked, or an admin, can {action} this conversation."
    nothing_to_stop: str = "Nothing to stop."
    reset: str = "🆕 Fresh conversation: your next message here starts a new conversation."
    switched: str = "🤖 Now talking to **{name}**, in a fresh conversation."
    no_agent: str = "No agent named “{name}” here. Agents: {agents}."
    no_agents: str = "No agent is available here."
    agent_name: str = "{name}"
    """One agent in the `{agents}` of `no_agent`."""
    agents: str = "**Agents**"
    """The title of the agent list; each agent follows as `- `name` (current): description`."""
    help: str = "Send me a message and the agent answers here."
    too_large: str = "⚠️ {name} is too large to pass on."
    unreadable: str = "⚠️ {name} could not be read; it was not passed on."
    attached: str = "(see the attached file)"
    """The text of a message that is only files."""
