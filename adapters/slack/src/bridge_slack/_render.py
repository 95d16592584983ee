"""Text shapes for Slack: canonical final parts, in-progress bodies, notices, blocks."""

from __future__ import annotations

from typing import Any

from bridge.errors import RunFailedError, UpstreamError
from bridge.models import Task
from bridge.render import heal_markdown, split_markdown

__all__ = [
    "MARKDOWN_LIMIT",
    "body_blocks",
    "error_text",
    "failure_text",
    "final_parts",
    "final_text",
    "hitl_text",
    "progress_body",
]

MARKDOWN_LIMIT = 12_000
"""`markdown_text` per call and a `markdown` block's text (Slack's documented limit)."""

_PROGRESS_TAIL = " …"


def final_parts(text: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """The canonical answer cut into messages at clean Markdown boundaries; never empty."""
    parts = [part for part in split_markdown(text, limit) if part.strip()]
    return parts or ["_(The agent returned an empty answer.)_"]


def progress_body(text: str, limit: int = MARKDOWN_LIMIT) -> str:
    """What an in-progress message shows: the healed text, cut to fit."""
    if len(text) + len(_PROGRESS_TAIL) > limit:
        text = text[: limit - 2 * len(_PROGRESS_TAIL) - 16]
        return heal_markdown(text) + _PROGRESS_TAIL
    return heal_markdown(text)


def final_text(task: Task | None) -> str:
    return (task.result if task is not None else None) or ""


def failure_text(partial: str, error: RunFailedError) -> str:
    """A failed or stopped turn, said plainly after whatever was already shown."""
    if error.status == "stopped":
        notice = "_Stopped._"
    else:
        detail = (error.task.result or "").strip() if error.task is not None else ""
        notice = f"_The agent's run {error.status}_" + (f": {detail}" if detail else ".")
    return f"{partial.rstrip()}\n\n{notice}" if partial.strip() else notice


def error_text(partial: str, error: UpstreamError) -> str:
    notice = (
        f"_Could not get an answer from the agent platform ({type(error).__name__}). Try again._"
    )
    return f"{partial.rstrip()}\n\n{notice}" if partial.strip() else notice


def hitl_text(task: Task) -> str:
    request = task.hitl_request or {}
    content = request.get("content") or request.get("message") or request.get("title") or ""
    return f"*Approval needed.* {content}".strip()


def body_blocks(body: str, stop_value: str | None = None) -> list[dict[str, Any]]:
    """A `markdown` block (standard Markdown) and, while working, a Stop button."""
    blocks: list[dict[str, Any]] = [{"type": "markdown", "text": body}]
    if stop_value is not None:
        blocks.append(
            {
                "type": "actions",
                "block_id": "bridge_controls",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "bridge_stop",
                        "style": "danger",
                        "text": {"type": "plain_text", "text": "Stop"},
                        "value": stop_value,
                    }
                ],
            }
        )
    return blocks
