"""Text shapes for Slack: canonical final parts and message bodies (in-progress text is
`bridge.render.slack_preview`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.render import SLACK_MARKDOWN_TEXT_LIMIT as MARKDOWN_LIMIT
from bridge.render import split_slack_markdown

__all__ = ["MARKDOWN_LIMIT", "Body", "body_blocks", "final_parts"]


def final_parts(text: str, limit: int = MARKDOWN_LIMIT) -> list[str]:
    """The canonical answer cut into messages at clean Markdown boundaries; never empty."""
    parts = [part for part in split_slack_markdown(text, limit) if part.strip()]
    return parts or ["(no answer)"]


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


@dataclass(frozen=True, slots=True)
class Body:
    """What one message of an answer shows: Markdown, and while working a Stop button."""

    text: str
    stop_value: str | None = None

    def fields(self) -> dict[str, Any]:
        """The message's `text` (its notification and fallback) and `blocks`."""
        return {"text": self.text[:3000], "blocks": body_blocks(self.text, self.stop_value)}
