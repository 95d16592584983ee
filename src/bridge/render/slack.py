"""Markdown → Slack mrkdwn, and splitting at Slack's limits.

`markdown_text` (native streaming, `chat.postMessage`) takes standard Markdown
and only needs splitting; classic `text` fields need mrkdwn, built here by
walking markdown-it's syntax tree.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from markdown_it.tree import SyntaxTreeNode

from bridge.render._heal import heal_markdown
from bridge.render._markdown import (
    MarkdownTooDeepError,
    is_tight,
    normalize_newlines,
    parse_tree,
    table_text,
)
from bridge.render._split import split_markdown

__all__ = [
    "SLACK_MARKDOWN_TEXT_LIMIT",
    "SLACK_TEXT_LIMIT",
    "escape_slack_markdown",
    "slack_preview",
    "split_slack_markdown",
    "to_slack_mrkdwn",
    "to_slack_mrkdwn_parts",
]

SLACK_MARKDOWN_TEXT_LIMIT = 12_000
"""Characters of `markdown_text` in one call."""
SLACK_TEXT_LIMIT = 40_000
"""Characters of a message's `text`."""

_WRAP = {"strong": "*", "em": "_", "s": "~"}
_LINKABLE = frozenset({"http", "https", "mailto"})


def split_slack_markdown(text: str, limit: int = SLACK_MARKDOWN_TEXT_LIMIT) -> list[str]:
    """Standard Markdown cut into `markdown_text` chunks (see `split_markdown`)."""
    return split_markdown(text, limit)


def slack_preview(partial: str, limit: int = SLACK_MARKDOWN_TEXT_LIMIT) -> str:
    """What a message shows of an answer still being written: the healed Markdown, cut to
    fit `limit` with a " …" tail when it does not."""
    tail = " …"
    if len(partial) + len(tail) > limit:
        return heal_markdown(partial[: limit - 2 * len(tail) - 16]) + tail
    return heal_markdown(partial)


def to_slack_mrkdwn_parts(text: str, limit: int = SLACK_TEXT_LIMIT) -> list[str]:
    """Markdown as mrkdwn messages of at most `limit` characters each.

    The Markdown is split first, at block boundaries, so that formatting never
    straddles two messages; a part that escaping made too long is split again.
    Raises ValueError if `limit` < 5 (an escaped "&" takes five).
    """
    if limit < 5:
        raise ValueError(f"limit must hold an escaped character, got {limit}")
    return _mrkdwn_parts(text, limit, limit)


def _mrkdwn_parts(text: str, limit: int, budget: int) -> list[str]:
    parts: list[str] = []
    for chunk in split_markdown(text, budget):
        mrkdwn = to_slack_mrkdwn(chunk)
        if len(mrkdwn) <= limit:
            parts.append(mrkdwn)
        else:  # escaping ("&" → "&amp;") grew it: shrink the Markdown budget in proportion
            smaller = max(1, min(budget - 1, len(chunk) * limit // len(mrkdwn)))
            parts += _mrkdwn_parts(chunk, limit, smaller)
    return [part for part in parts if part]


def to_slack_mrkdwn(text: str) -> str:
    """Convert standard Markdown to Slack mrkdwn.

    Bold `*x*`, italic `_x_`, strike `~x~`, links `<url|text>`, inline and
    fenced code, headings as bold lines, lists with "• " / "1. ", quotes with
    "> ", tables as code blocks; `&`, `<` and `>` escaped everywhere.
    Slack has no escape for `*`, `_`, `~` or a backtick, so literal ones may
    still format, and emphasis inside a word does not render in Slack.
    Text nested too deeply to render safely comes back as escaped plain text.
    """
    try:
        return _blocks(parse_tree(text).children, tight=False).strip("\n")
    except (MarkdownTooDeepError, RecursionError):
        return escape(normalize_newlines(text)).strip("\n")


_QUOTE = re.compile(r"(?:[ ]{0,3}>[ ]?)+")
#: Slack's mention syntax, as it reads once escaped: what `allow` can turn back on.
_MENTIONS = {
    "users": r"@[UW][A-Z0-9]+(?:\|[^&\n]*)?",
    "user_groups": r"!subteam\^[A-Z0-9]+(?:\|[^&\n]*)?",
    "here": r"!here(?:\|here)?",
    "channel": r"!channel(?:\|channel)?",
    "everyone": r"!everyone(?:\|everyone)?",
}


def escape_slack_markdown(
    text: str, *, allow: Collection[str] = (), at_line_start: bool = True
) -> str:
    """Standard Markdown as it may be sent to Slack (`markdown_text`, `markdown` blocks, `text`):
    `&`, `<` and `>` escaped, so that no `<!channel>`, `<!here>`, `<!everyone>`,
    `<!subteam^…>`, `<@U…>` or other control sequence reaches Slack, except the kinds in
    `allow` (`users`, `user_groups`, `here`, `channel`, `everyone`). Quote markers (`>` at
    a line start; the text's first line counts as one when `at_line_start`) stay Markdown.
    """
    lines = text.split("\n")
    for i, line in enumerate(lines):
        marker = _QUOTE.match(line) if i or at_line_start else None
        cut = marker.end() if marker else 0
        lines[i] = line[:cut] + escape(line[cut:])
    escaped = "\n".join(lines)
    kinds = [_MENTIONS[kind] for kind in allow if kind in _MENTIONS]
    if kinds:
        pattern = re.compile(f"&lt;((?:{'|'.join(kinds)}))&gt;")
        escaped = pattern.sub(r"<\1>", escaped)
    return escaped


def escape(text: str) -> str:
    """Escape the three characters Slack reserves for its own markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _blocks(nodes: list[SyntaxTreeNode], *, tight: bool) -> str:
    return ("\n" if tight else "\n\n").join(_block(node) for node in nodes)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "paragraph":
        return _inlines(node.children)
    if kind == "heading":
        title = _inlines(node.children, bold=True)
        return f"*{title}*" if title.strip() else ""
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind == "blockquote":
        inner = _blocks(node.children, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in inner.split("\n"))
    if kind in ("fence", "code_block"):
        return _code(node.content)
    if kind == "table":
        return _code(table_text(node))
    if kind == "hr":
        return "———"
    if node.children:
        return _blocks(node.children, tight=False)
    return escape(node.content.rstrip("\n"))


def _code(content: str) -> str:
    return "```\n" + escape(content.removesuffix("\n")) + "\n```"


def _list(node: SyntaxTreeNode) -> str:
    number = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else None
    tight = is_tight(node)
    items = []
    for i, item in enumerate(node.children):
        marker = "• " if number is None else f"{number + i}. "
        body = _blocks(item.children, tight=tight).split("\n")
        pad = " " * len(marker)
        items.append(
            "\n".join([marker + body[0], *(pad + line if line else "" for line in body[1:])])
        )
    return ("\n" if tight else "\n\n").join(items)


def _inlines(nodes: list[SyntaxTreeNode], *, bold: bool = False, in_link: bool = False) -> str:
    out: list[str] = []
    for node in nodes:
        kind = node.type
        if kind == "inline":
            out.append(_inlines(node.children, bold=bold, in_link=in_link))
        elif kind in ("text", "html_inline"):
            out.append(escape(node.content))
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "code_inline":
            out.append(escape(node.content) if in_link else f"`{escape(node.content)}`")
        elif kind in _WRAP:
            inner = _inlines(node.children, bold=bold or kind == "strong", in_link=in_link)
            nested_bold = kind == "strong" and bold
            out.append(inner if nested_bold or in_link else _WRAP[kind] + inner + _WRAP[kind])
        elif kind in ("link", "image"):
            out.append(_link(node))
        elif node.children:
            out.append(_inlines(node.children, bold=bold, in_link=in_link))
        else:
            out.append(escape(node.content))
    return "".join(out)


def _link(node: SyntaxTreeNode) -> str:
    url = str(node.attrs.get("href" if node.type == "link" else "src", ""))
    label = _inlines(node.children, in_link=True)
    target = escape(url).replace("|", "%7C")
    if not url or url.split(":", 1)[0].lower() not in _LINKABLE:
        return label  # `<!here|x>`, `<@U1|x>`: only web and mail addresses become links
    if not label or label == escape(url):
        return f"<{target}>"
    return f"<{target}|{label}>"
