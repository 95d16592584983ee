"""Split long Markdown into parts under a length limit, at block boundaries when possible.

Blocks come from markdown-it's token map (source line ranges); a fenced code block
or table that is too long is cut into several, each reopened with its header.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it.tree import SyntaxTreeNode

from bridge.render._markdown import MarkdownTooDeepError, normalize_newlines, parse_tree

__all__ = ["split_markdown"]

# Plain-text fallback inside one over-long line: a word with its trailing whitespace.
_WORD = re.compile(r"\S+\s*|\s+")
_BLOCK_START = frozenset("#>-+*=`~|0123456789")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t]*\n)+")


def split_markdown(text: str, limit: int, *, length: Callable[[str], int] = len) -> list[str]:
    """Split `text` into parts with `length(part) <= limit`, losing no content.

    Cuts fall between blocks (paragraphs, headings, list items, table rows)
    when they can, inside a block at line then word boundaries when they must.
    A fenced code block is never cut unless it alone exceeds `limit`; then it
    becomes several fenced blocks, each closed and reopened with the same info
    string; an over-long table repeats its header row. Parts have no leading
    blank lines or trailing whitespace; whitespace-only text gives no parts.

    `length` must add up over concatenation, as `len` and UTF-16 counting do.
    Raises ValueError if `limit` cannot hold a single character.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    text = normalize_newlines(text)
    if not text.strip():
        return []
    if length(text) <= limit:
        return _pack([text], limit, length)
    raw = text.split("\n")
    lines = [line + "\n" for line in raw[:-1]] + ([raw[-1]] if raw[-1] else [])
    splitter = _Splitter(lines, limit, length)
    try:
        pieces = splitter.blocks(parse_tree(text).children, 0, len(lines))
    except (MarkdownTooDeepError, RecursionError):
        pieces = splitter.plain(0, len(lines))  # too deep to parse: cut at lines and words
    return _pack(pieces, limit, length)


class _Splitter:
    def __init__(self, lines: list[str], limit: int, length: Callable[[str], int]) -> None:
        self.lines = lines
        self.limit = limit
        self.length = length

    def blocks(self, nodes: list[SyntaxTreeNode], start: int, end: int) -> list[str]:
        """Pieces covering source lines [start, end), cut between the blocks `nodes`."""
        spans = [(n, n.map[0]) for n in nodes if n.map is not None and n.type != "inline"]
        if not spans:
            return self.plain(start, end)
        pieces = self.plain(start, max(start, spans[0][1]))
        for i, (node, first) in enumerate(spans):
            a = max(first, start)
            b = spans[i + 1][1] if i + 1 < len(spans) else end
            pieces += self.block(node, a, max(a, min(b, end)))
        return pieces

    def block(self, node: SyntaxTreeNode, a: int, b: int) -> list[str]:
        assert node.map is not None
        end = max(a, min(node.map[1], b))
        if self.length("".join(self.lines[a:end]).rstrip()) <= self.limit:
            return ["".join(self.lines[a:end]), *self.plain(end, b)]
        if node.type == "fence":
            pieces = self.fence(node, a, end)
        elif node.type == "table":
            pieces = self.reframe(self.lines[a : a + 2], self.lines[a : a + 2], a + 2, end, "")
        elif any(child.map is not None and child.type != "inline" for child in node.children):
            return self.blocks(node.children, a, b)
        else:
            return self.plain(a, b)
        return (pieces if pieces is not None else self.plain(a, end)) + self.plain(end, b)

    def fence(self, node: SyntaxTreeNode, a: int, end: int) -> list[str] | None:
        opening, marker = self.lines[a], node.markup
        at = opening.find(marker)
        if at < 0 or not opening.endswith("\n"):
            return None
        # Container markers are not in the token: keep ">" and turn list markers into indent.
        indent = "".join(c if c in " \t>" else " " for c in opening[:at])
        closed = end - 1 > a and _closes(self.lines[end - 1], marker)
        closing = self.lines[end - 1] if closed else indent + marker + "\n"
        if not closing.endswith("\n"):
            closing += "\n"
        body_end = end - 1 if closed else end
        return self.reframe([opening], [indent + opening[at:]], a + 1, body_end, closing)

    def reframe(
        self, first: list[str], header: list[str], a: int, b: int, footer: str
    ) -> list[str] | None:
        """Body lines [a, b) in chunks, each between `header` (`first` for the first) and `footer`."""
        heads = ["".join(first), "".join(header)]
        room = self.limit - max(self.length(h) for h in heads) - self.length(footer)
        if room < 3:
            return None
        pieces: list[str] = []
        chunk: list[str] = []
        size = 0
        for line in self.lines[a:b]:
            line = line if line.endswith("\n") else line + "\n"
            parts = [line] if self.length(line) <= room else self.hard(line[:-1], room - 1)
            for part in parts:
                part = part if part.endswith("\n") else part + "\n"
                if chunk and size + self.length(part) > room:
                    pieces.append(heads[bool(pieces)] + "".join(chunk) + footer)
                    chunk, size = [], 0
                chunk.append(part)
                size += self.length(part)
        pieces.append(heads[bool(pieces)] + "".join(chunk) + footer)
        return pieces

    def plain(self, a: int, b: int) -> list[str]:
        """Lines [a, b), each over-long line cut at word boundaries, then anywhere."""
        pieces: list[str] = []
        for line in self.lines[a:b]:
            if self.length(line) <= self.limit:
                pieces.append(line)
                continue
            words: list[str] = []
            for word in _WORD.findall(line):
                # A part must not begin with what would read as block syntax ("- ", "#", "```").
                joined = words[-1] + word if words and word[0] in _BLOCK_START else ""
                if joined and self.length(joined) <= self.limit:
                    words[-1] = joined
                elif self.length(word) <= self.limit:
                    words.append(word)
                else:
                    words += self.hard(word, self.limit)
            pieces += words
        return pieces

    def hard(self, text: str, room: int) -> list[str]:
        """`text` cut between code points into runs of length <= room."""
        runs: list[str] = []
        run: list[str] = []
        size = 0
        for ch in text:
            width = self.length(ch)
            if width > room:
                raise ValueError(f"limit {self.limit} cannot hold the character {ch!r}")
            if run and size + width > room:
                runs.append("".join(run))
                run, size = [], 0
            run.append(ch)
            size += width
        if run:
            runs.append("".join(run))
        return runs


def _closes(line: str, marker: str) -> bool:
    """Whether `line` closes a fence opened with `marker` (container prefixes allowed)."""
    # markdown-it keeps no token for the closing line, so it is recognised here.
    bare = line.lstrip(" \t>").rstrip()
    return len(bare) >= len(marker) and bare == marker[0] * len(bare)


def _pack(pieces: list[str], limit: int, length: Callable[[str], int]) -> list[str]:
    """Greedily join consecutive pieces into parts of at most `limit`."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        width = length(piece)
        # Trailing whitespace is trimmed from a part's end, so it need not fit.
        if current and size + length(piece.rstrip()) > limit:
            parts.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += width
    parts.append("".join(current))
    trimmed = (_LEADING_BLANK_LINES.sub("", part).rstrip() for part in parts)
    return [part for part in trimmed if part]
