"""Deterministic Markdown for the `writer` agent: directives, document of an exact size, chunking.

The document exercises every construct a renderer must handle: headings, emphasis, links,
nested lists, a table and fenced code. Whole sections are kept intact; the remainder is
filled with plain prose so that cutting to an exact size never breaks a code fence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["WriterPlan", "document", "parse_directives", "split"]

DEFAULT_CHARS = 1500
DEFAULT_CHUNKS = 15
MAX_CHARS = 5_000_000
MAX_CHUNKS = 1_000_000
_DIRECTIVE = re.compile(r"\b(chars|chunks|seconds)\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_TOPICS = (
    "Streaming answers",
    "Thread mapping",
    "Rate limits",
    "Human approval",
    "Reconnecting",
    "Rendering Markdown",
)
_PROSE = (
    "The bridge keeps one upstream thread per conversation and streams every answer as it "
    "is written. Long answers are split where the destination requires it, and edits are "
    "paced so that no platform limit is exceeded. "
)


@dataclass(frozen=True)
class WriterPlan:
    """What the writer will produce: total characters, number of chunks, duration."""

    chars: int
    chunks: int
    seconds: float


def parse_directives(text: str) -> WriterPlan:
    """Read `chars=N`, `chunks=N`, `seconds=S` from a message (defaults otherwise).

    The size is raised to the chunk count when needed, so that no chunk is empty.
    """
    found = {key.lower(): value for key, value in _DIRECTIVE.findall(text)}
    chars = min(int(float(found.get("chars", DEFAULT_CHARS))), MAX_CHARS)
    chunks = max(1, min(int(float(found.get("chunks", DEFAULT_CHUNKS))), MAX_CHUNKS))
    seconds = float(found.get("seconds", 0))
    return WriterPlan(chars=max(chars, chunks), chunks=chunks, seconds=seconds)


def _section(index: int) -> str:
    topic = _TOPICS[index % len(_TOPICS)]
    number = index + 1
    return (
        f"## {number}. {topic}\n\n"
        f"This section covers **{topic.lower()}** with *care*; see "
        f"[the spec](https://example.com/spec#{number}) and `code_{number}()`.\n\n"
        f"- First point of section {number}\n"
        f"- Second point, with a nested list:\n"
        f"  1. step one\n"
        f"  2. step two\n"
        f"- Third point\n\n"
        f"| Setting | Value | Note |\n"
        f"|---|---:|---|\n"
        f"| retries | {number} | per request |\n"
        f"| timeout | {number * 15} | seconds |\n\n"
        f"```python\n"
        f"def section_{number}(text: str) -> str:\n"
        f'    return text.replace("<", "&lt;")  # section {number}\n'
        f"```\n\n"
    )


def document(chars: int) -> str:
    """A Markdown document of exactly `chars` characters (deterministic)."""
    title = "# Report from the writer agent\n\n"
    if chars <= len(title):
        return (_PROSE * (chars // len(_PROSE) + 1))[:chars]
    parts = [title]
    size = len(title)
    index = 0
    while True:
        section = _section(index)
        if size + len(section) > chars:
            break
        parts.append(section)
        size += len(section)
        index += 1
    remaining = chars - size
    parts.append((_PROSE * (remaining // len(_PROSE) + 1))[:remaining])
    return "".join(parts)


def split(text: str, parts: int) -> list[str]:
    """Split `text` into `parts` pieces of nearly equal size, in order."""
    parts = max(1, min(parts, len(text))) if text else 1
    size, extra = divmod(len(text), parts)
    pieces: list[str] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces
