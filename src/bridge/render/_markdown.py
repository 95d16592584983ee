"""The Markdown dialect every renderer parses, and small helpers over its syntax tree."""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode


def new_parser() -> MarkdownIt:
    """CommonMark plus GFM tables and strikethrough; raw HTML stays literal text."""
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


@cache
def markdown_parser() -> MarkdownIt:
    """The shared parser (parsing is synchronous, so sharing it is safe)."""
    return new_parser()


def parse_tree(text: str) -> SyntaxTreeNode:
    """The syntax tree of `text` (line endings normalized)."""
    return SyntaxTreeNode(markdown_parser().parse(normalize_newlines(text)))


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
