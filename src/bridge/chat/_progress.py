"""One reducer from upstream events to progress: the steps Slack task cards, Telegram status
lines, MCP progress notifications, A2A status updates and the CLI's stderr all show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bridge.events import (
    AnalysisRecorded,
    ContextCompacted,
    Event,
    PlanUpdated,
    ResumedByPolling,
    SubAgentTriggered,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)

__all__ = ["Progress", "Step", "StepKind", "answered_step", "step_of"]

StepKind = Literal["thinking", "tool", "plan", "agent", "compacted", "resumed", "answered"]
_STEP_CHARS = 200


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _STEP_CHARS else line[: _STEP_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class Step:
    """One visible step of a turn. `key` identifies a step that later events update (a tool
    call and its result share one)."""

    kind: StepKind
    label: str
    key: str
    state: Literal["running", "done", "failed"] = "running"

    @property
    def line(self) -> str:
        """The step as one plain line, for status lines and logs."""
        if self.kind == "tool":
            verb = {"running": "Using", "done": "Used", "failed": "Failed:"}[self.state]
            return f"{verb} {self.label}"
        return self.label


def step_of(event: Event) -> Step | None:
    """The step an event shows, or None for events that are not progress."""
    if isinstance(event, ThoughtRecorded | AnalysisRecorded):
        title = _short(event.title or event.text or "") or "Thinking"
        return Step("thinking", title, f"think:{event.time or title}", "done")
    if isinstance(event, ToolCallRequested | ToolCallFinished):
        key = event.tool_call_id or event.request_id or event.name
        if isinstance(event, ToolCallRequested):
            return Step("tool", event.name, f"tool:{key}")
        return Step("tool", event.name, f"tool:{key}", "failed" if event.is_error else "done")
    if isinstance(event, PlanUpdated):
        return Step("plan", f"Plan of {len(event.tasks)} steps", "plan", "done")
    if isinstance(event, SubAgentTriggered):
        return Step("agent", "Asked another agent", f"agent:{event.sub_task_id}", "done")
    if isinstance(event, ContextCompacted):
        return Step("compacted", "Compacted the conversation", "compacted", "done")
    if isinstance(event, ResumedByPolling):
        return Step("resumed", "Lost the stream; waiting for the answer", "resumed")
    return None


def answered_step(number: int) -> Step:
    """The step shown when a turn that waited for its user (approval, sign-in) goes on."""
    return Step("answered", "The user answered; working", f"answered:{number}", "done")


@dataclass
class Progress:
    """Every step of a turn so far, in order; a step with a known key is updated in place."""

    steps: list[Step] = field(default_factory=list)

    def add(self, step: Step) -> None:
        for index, seen in enumerate(self.steps):
            if seen.key == step.key:
                self.steps[index] = step
                return
        self.steps.append(step)

    @property
    def current(self) -> Step | None:
        """The latest step, which status lines show."""
        return self.steps[-1] if self.steps else None
