"""Markdown → Telegram plain text plus `MessageEntity` dicts, split at the message limit.

Built by walking markdown-it's syntax tree, so no MarkdownV2 escaping is ever
needed; offsets and lengths are UTF-16 code units, as the Bot API counts them.
The adapter turns the dicts into its SDK's entity objects.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict
from urllib.parse import urlsplit

from markdown_it.tree import SyntaxTreeNode

from bridge.render._heal import heal_markdown
from bridge.render._markdown import (
    MarkdownTooDeepError,
    is_tight,
    normalize_newlines,
    parse_tree,
    table_text,
    utf16_len,
)

__all__ = [
    "TELEGRAM_TEXT_LIMIT",
    "TelegramEntity",
    "TelegramMessage",
    "telegram_preview",
    "to_telegram",
    "with_status_line",
]

TELEGRAM_TEXT_LIMIT = 4096
"""Characters (UTF-16 code units) in one text message, after entity parsing."""

#: Only web and mail links: `tg://user?id=…` would mention someone, `tg://join` joins a chat.
_LINKABLE = frozenset({"http", "https", "mailto"})
_CODE = frozenset({"code", "pre"})
_SIMPLE = {"strong": "bold", "em": "italic", "s": "strikethrough"}
_RANK = {"blockquote": 0, "bold": 1, "italic": 1, "strikethrough": 1, "code": 3, "pre": 3}


class TelegramEntity(TypedDict):
    """One Bot API `MessageEntity`: offsets and lengths in UTF-16 code units."""

    type: str
    offset: int
    length: int
    url: NotRequired[str]
    language: NotRequired[str]


@dataclass(frozen=True)
class TelegramMessage:
    """One message to send: `text` with `entities`, within Telegram's limit."""

    text: str
    entities: list[TelegramEntity] = field(default_factory=list)


def to_telegram(text: str, *, limit: int = TELEGRAM_TEXT_LIMIT) -> list[TelegramMessage]:
    """Render Markdown as Telegram messages of at most `limit` UTF-16 units each.

    Bold, italic, strikethrough, inline code, code blocks (with language),
    links and blockquotes become entities; headings are bold; lists get "• "
    or "1. " prefixes; tables become a preformatted block. Entities are nested
    or disjoint, as Telegram requires; one that crosses a message boundary is
    split in two. Cuts prefer blank lines, then line breaks, then spaces.
    Whitespace-only input gives no messages. Text nested too deeply to render
    safely is sent as plain text, split the same way. Raises ValueError if `limit` < 2.
    """
    if limit < 2:
        raise ValueError(f"limit must hold one character of two UTF-16 units, got {limit}")
    out = _Builder()
    try:
        _blocks(out, parse_tree(text).children, tight=False)
    except (MarkdownTooDeepError, RecursionError):
        return _split(normalize_newlines(text), [], limit)
    return _split("".join(out.chunks), out.entities, limit)


@dataclass
class _Builder:
    chunks: list[str] = field(default_factory=list)
    size: int = 0
    entities: list[TelegramEntity] = field(default_factory=list)
    indent: str = ""
    at_line_start: bool = True
    in_link: bool = False
    in_quote: bool = False

    def write(self, text: str) -> None:
        """Append text, indenting each non-empty line that starts inside a list item."""
        for i, line in enumerate(text.split("\n")):
            if i:
                self._raw("\n")
                self.at_line_start = True
            if line:
                if self.at_line_start and self.indent:
                    self._raw(self.indent)
                self._raw(line)
                self.at_line_start = False

    def _raw(self, text: str) -> None:
        self.chunks.append(text)
        self.size += utf16_len(text)

    @contextmanager
    def entity(self, kind: str, **extra: str) -> Iterator[None]:
        start = self.size
        yield
        if self.size > start:
            entity = TelegramEntity(type=kind, offset=start, length=self.size - start)
            if "url" in extra:
                entity["url"] = extra["url"]
            if "language" in extra:
                entity["language"] = extra["language"]
            self.entities.append(entity)


def telegram_preview(partial: str, status: str | None = None) -> TelegramMessage:
    """What a draft or message shows of an answer still being written: its healed first
    message, under `status` as an italic line."""
    body = TelegramMessage("")
    if partial.strip():
        pieces = to_telegram(heal_markdown(partial))
        if pieces:
            body = pieces[0]
    return with_status_line(body, status)


def with_status_line(message: TelegramMessage, status: str | None) -> TelegramMessage:
    """`message` under an italic `status` line, unless the line would overflow it."""
    if not status:
        return message
    prefix = f"{status}\n\n" if message.text else status
    shift = utf16_len(prefix)
    if shift + utf16_len(message.text) > TELEGRAM_TEXT_LIMIT:
        return message
    italic = TelegramEntity(type="italic", offset=0, length=utf16_len(status))
    moved = [TelegramEntity(**{**e, "offset": e["offset"] + shift}) for e in message.entities]
    return TelegramMessage(prefix + message.text, [italic, *moved])


def _blocks(out: _Builder, nodes: list[SyntaxTreeNode], *, tight: bool) -> None:
    for i, node in enumerate(nodes):
        if i:
            out.write("\n" if tight else "\n\n")
        _block(out, node)


def _block(out: _Builder, node: SyntaxTreeNode) -> None:
    kind = node.type
    if kind == "paragraph":
        _inlines(out, node.children)
    elif kind == "heading":
        with out.entity("bold"):
            _inlines(out, node.children)
    elif kind in ("bullet_list", "ordered_list"):
        _list(out, node)
    elif kind == "blockquote":
        if out.in_quote:  # Telegram does not nest blockquotes
            _blocks(out, node.children, tight=False)
            return
        out.in_quote = True
        with out.entity("blockquote"):
            _blocks(out, node.children, tight=False)
        out.in_quote = False
    elif kind in ("fence", "code_block"):
        language = node.info.split()[0] if node.info.strip() else ""
        with out.entity("pre", **({"language": language} if language else {})):
            out.write(node.content.removesuffix("\n"))
    elif kind == "table":
        with out.entity("pre"):
            out.write(table_text(node))
    elif kind == "hr":
        out.write("———")
    elif node.children:
        _blocks(out, node.children, tight=False)
    else:
        out.write(node.content.rstrip("\n"))


def _list(out: _Builder, node: SyntaxTreeNode) -> None:
    number = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else None
    tight = is_tight(node)
    outer = out.indent
    for i, item in enumerate(node.children):
        if i:
            out.write("\n" if tight else "\n\n")
        marker = "• " if number is None else f"{number + i}. "
        out.write(marker)
        out.indent = outer + " " * len(marker)
        _blocks(out, item.children, tight=tight)
        out.indent = outer


def _inlines(out: _Builder, nodes: list[SyntaxTreeNode]) -> None:
    for node in nodes:
        kind = node.type
        if kind == "inline":
            _inlines(out, node.children)
        elif kind in ("text", "html_inline"):
            out.write(node.content)
        elif kind in ("softbreak", "hardbreak"):
            out.write("\n")
        elif kind == "code_inline":
            if out.in_link:  # Telegram: a link cannot contain code
                out.write(node.content)
            else:
                with out.entity("code"):
                    out.write(node.content)
        elif kind in _SIMPLE:
            with out.entity(_SIMPLE[kind]):
                _inlines(out, node.children)
        elif kind in ("link", "image"):
            _link(out, node)
        elif node.children:
            _inlines(out, node.children)
        else:
            out.write(node.content)


def _link(out: _Builder, node: SyntaxTreeNode) -> None:
    url = str(node.attrs.get("href" if node.type == "link" else "src", ""))
    if out.in_link or urlsplit(url).scheme.lower() not in _LINKABLE:
        _inlines(out, node.children)
        return
    out.in_link = True
    with out.entity("text_link", url=url):
        _inlines(out, node.children)
        if not node.children:
            out.write(url)
    out.in_link = False


def _split(text: str, entities: list[TelegramEntity], limit: int) -> list[TelegramMessage]:
    """Cut `text` into messages of at most `limit` UTF-16 units, clipping entities."""
    units = [0]
    for ch in text:
        units.append(units[-1] + (2 if ord(ch) > 0xFFFF else 1))
    code = sorted((e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _CODE)

    def in_code(i: int) -> bool:
        """Whether the character at code point `i` lies inside a code or pre entity."""
        return any(start <= units[i] < end for start, end in code)

    messages: list[TelegramMessage] = []
    start = 0
    while start < len(text):
        while start < len(text) and text[start].isspace() and not in_code(start):
            start += 1
        if start == len(text):
            break
        stop = bisect_right(units, units[start] + limit) - 1
        cut, resume = (
            (len(text), len(text)) if stop >= len(text) else _cut(text, start, stop, in_code)
        )
        end = cut
        while end > start and text[end - 1].isspace() and not in_code(end - 1):
            end -= 1
        if end > start:
            messages.append(_message(text, units, entities, start, end))
        start = resume
    return messages


def _cut(text: str, start: int, stop: int, in_code: Callable[[int], bool]) -> tuple[int, int]:
    """Where to end a message that must end by `stop`, and where the next one starts.

    Blank lines outside code first (a code block that fits moves whole), then
    line breaks outside code, then any line break, space, or the limit itself.
    """
    for separator, outside in (("\n\n", True), ("\n", True), ("\n", False), (" ", False)):
        end = stop + len(separator)
        while (at := text.rfind(separator, start + 1, end)) > start:
            if not outside or not in_code(at):
                return at, at + len(separator)
            end = at + len(separator) - 1
    return stop, stop


def _message(
    text: str, units: list[int], entities: list[TelegramEntity], start: int, end: int
) -> TelegramMessage:
    low, high = units[start], units[end]
    clipped: list[TelegramEntity] = []
    for entity in entities:
        a = max(entity["offset"], low)
        b = min(entity["offset"] + entity["length"], high)
        if b > a:
            part = TelegramEntity(type=entity["type"], offset=a - low, length=b - a)
            if "url" in entity:
                part["url"] = entity["url"]
            if "language" in entity:
                part["language"] = entity["language"]
            clipped.append(part)
    # Outer first; on equal ranges a style goes outside code, as Telegram nests them.
    clipped.sort(key=lambda e: (e["offset"], -e["length"], _RANK.get(e["type"], 2)))
    return TelegramMessage(text[start:end], clipped)
