"""The Markdown dialect every renderer parses, and small helpers over its syntax tree."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

MAX_NESTING = 20
"""Deepest nesting of blocks plus inline spans a renderer walks; deeper text is shown plain."""


class MarkdownTooDeepError(ValueError):
    """The text nests blocks or emphasis deeper than `MAX_NESTING`."""


def new_parser() -> MarkdownIt:
    """CommonMark plus GFM tables and strikethrough; raw HTML stays literal text."""
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@cache
def markdown_parser() -> MarkdownIt:
    """The shared parser (parsing is synchronous, so sharing it is safe)."""
    return new_parser()


def parse_tree(text: str) -> SyntaxTreeNode:
    """The syntax tree of `text` (line endings normalized).

    The flat token list is checked before the (recursive) tree is built, so hostile
    nesting such as 600 `*` around a letter can never exhaust the stack.
    Raises MarkdownTooDeepError past `MAX_NESTING`.
    """
    tokens = markdown_parser().parse(normalize_newlines(text))
    check_nesting(tokens)
    return SyntaxTreeNode(tokens)


def check_nesting(tokens: Sequence[Token], limit: int = MAX_NESTING) -> None:
    """Raise MarkdownTooDeepError if blocks plus inline spans nest deeper than `limit`.

    markdown-it caps block nesting while parsing, but emphasis is paired after
    parsing, so a long run of delimiters nests without bound: count it here.
    """
    depth = 0
    for token in tokens:
        depth += token.nesting
        inline = depth
        for child in token.children or ():
            inline += child.nesting
            if inline > limit:
                raise MarkdownTooDeepError(f"Markdown nests deeper than {limit} levels")
        if depth > limit:
            raise MarkdownTooDeepError(f"Markdown nests deeper than {limit} levels")


def normalize_newlines(text: str) -> str:
    """Line endings as markdown-it counts lines, so token maps index `text.split("\\n")`."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram's limits and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def is_tight(list_node: SyntaxTreeNode) -> bool:
    """Whether a list is tight (markdown-it hides the paragraphs of tight lists)."""
    paragraphs = [c for item in list_node.children for c in item.children if c.type == "paragraph"]
    return all(p.nester_tokens is None or p.nester_tokens.opening.hidden for p in paragraphs)


def plain_text(node: SyntaxTreeNode) -> str:
    """The visible text of an inline subtree, formatting dropped, breaks as spaces."""
    if node.type in ("softbreak", "hardbreak"):
        return " "
    if node.children:
        return "".join(plain_text(child) for child in node.children)
    return node.content


def table_text(table: SyntaxTreeNode) -> str:
    """A table as aligned monospace text, header underlined."""
    rows = [
        [plain_text(cell).strip() for cell in row.children]
        for section in table.children
        for row in section.children
    ]
    columns = max(len(row) for row in rows)
    rows = [row + [""] * (columns - len(row)) for row in rows]
    widths = [max(len(row[c]) for row in rows) for c in range(columns)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)
