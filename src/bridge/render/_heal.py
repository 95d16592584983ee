"""Make a streaming Markdown prefix render cleanly: close what is open, drop what dangles.

markdown-it parses; since its inline tokens carry no source offsets, wrapped inline
rules record where unmatched emphasis delimiters, backtick runs and failed links start.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.rules_inline import (
    StateInline,
    backtick,
    emphasis,
    link,
    link_pairs,
    strikethrough,
)
from markdown_it.rules_inline.state_inline import Delimiter

from bridge.render._markdown import markdown_parser, new_parser, normalize_newlines

__all__ = ["heal_markdown"]

_MARKS = "bridge.render.heal"
# markdown-it has no notion of an unfinished link: "[label", "[label]" or "[label](url" at the end.
_LINK_TAIL = re.compile(r"\[([^\[\]]*)(?:\](?:\([^()]*)?)?\Z")

_ROUNDS = 4
_REMOVAL_ROUNDS = 8
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
_Rule = Callable[[StateInline, bool], bool]
_Plan = tuple[list[tuple[int, int]], int, str]
"""Removals (offset, length), the offset the content is cut at, and what is appended."""


@dataclass
class _Marks:
    delimiters: dict[int, int] = field(default_factory=dict)
    """id(Delimiter) -> its offset in the inline source."""
    backticks: list[tuple[int, int]] = field(default_factory=list)
    """Backtick runs that opened no code span: (offset, length)."""
    brackets: list[int] = field(default_factory=list)
    """Offsets of "[" that opened no link."""


def heal_markdown(partial: str) -> str:
    """Make a streamed Markdown prefix renderable without broken formatting.

    Closes an open fenced code block (dropping a half-typed closing fence, or
    the whole block while it has no content); in the last paragraph or
    heading, drops unmatched `*`, `_`, `~~` and backtick runs that end the
    text, closes an open code span and open emphasis, and shows an unfinished
    `[label`, `[label]` or `[label](url` as its label. Text with nothing to
    heal is returned as is; healed text loses its trailing whitespace. The
    result heals to itself. Never raises.
    """
    text = normalize_newlines(partial)
    for _ in range(_ROUNDS):
        healed = _heal_once(text, _plan)
        if healed is None:
            return partial if text == normalize_newlines(partial) else text
        if healed == text:
            break  # a fixed point that is still not clean
        text = healed
    # Closing keeps making new openers (a closer that cannot close there): remove instead.
    for _ in range(_REMOVAL_ROUNDS):
        healed = _heal_once(text, _removal_plan)
        if healed is None or healed == text:
            return text
        text = healed
    # Hundreds of dangling openers (hostile output): show the prefix as literal text
    # rather than spend a parse per opener.
    return _PUNCTUATION.sub(r"\\\g<0>", normalize_newlines(partial)).rstrip()


def _heal_once(text: str, planner: Callable[[str], _Plan]) -> str | None:
    """`text` one step healthier, or None if it has nothing left to heal."""
    tokens = markdown_parser().parse(text)
    lines = text.split("\n")
    count = len(lines) - text.endswith("\n")
    for token in reversed(tokens):
        if token.type == "fence" and token.map is not None and token.map[1] >= count:
            first, end = token.map
            if end - 1 > first and _closes(lines[end - 1], token.markup):
                return None
            return _close_fence(lines[:count], first, token.markup)
        if token.type == "inline" and token.map is not None:
            if token.map[1] < count:
                return None
            plan = planner(token.content)
            if plan == ([], len(token.content.rstrip()), ""):
                return None
            healed = _apply(lines[:count], token.map[0], token.content, plan)
            return text if healed is None else healed
    return None


def _close_fence(lines: list[str], first: int, marker: str) -> str:
    opening = lines[first]
    at = max(opening.find(marker), 0)
    # Container markers are not in the token: keep ">" and turn list markers into indent.
    indent = "".join(c if c in " \t>" else " " for c in opening[:at])
    body = lines[first + 1 :]
    if body and body[-1].strip() and _closes(body[-1] + marker, marker):
        body = body[:-1]  # a closing fence being typed
    if not any(line.lstrip(" \t>").strip() for line in body):
        return "\n".join(lines[:first]).rstrip()
    return "\n".join([*lines[: first + 1], *body, indent + marker])


def _closes(line: str, marker: str) -> bool:
    """Whether `line` closes a fence opened with `marker` (container prefixes allowed)."""
    # markdown-it keeps no token for the closing line, so it is recognised here.
    bare = line.lstrip(" \t>").rstrip()
    return len(bare) >= len(marker) and bare == marker[0] * len(bare)


def _plan(src: str) -> _Plan:
    scan = _scan(src)
    removals: list[tuple[int, int]] = []
    cut = len(src.rstrip())
    for at in reversed(scan.marks.brackets):
        tail = _LINK_TAIL.match(src, at, cut)
        if tail is not None:
            bang = int(at > 0 and src[at - 1] == "!")
            removals.append((at - bang, 1 + bang))
            cut = at + 1 + len(tail.group(1))
            break
    runs = [(at, len(_marker(d))) for at, d in scan.unmatched] + scan.marks.backticks + removals
    while True:
        kept = src[:cut].rstrip()
        dangling = [at for at, length in runs if at + length == len(kept) and at < cut]
        if (len(kept) - len(kept.rstrip("~"))) % 2:
            dangling.append(len(kept) - 1)  # markdown-it keeps an odd "~" as text: half a "~~"
        if not dangling:
            break
        cut = min(dangling)
    # Something opened inside a closed pair cannot be closed at the end: it goes.
    appended, stop = "", cut
    ticks = [(at, length) for at, length in scan.marks.backticks if at < cut]
    if ticks and scan.enclosed(ticks[0][0]):
        removals.append(ticks[0])
    elif ticks:
        stop, length = ticks[0]
        appended = (" " if src[:cut].endswith("`") else "") + "`" * length
    openers = [(at, d) for at, d in scan.unmatched if d.open and at < stop]
    removals += [(at, len(_marker(d))) for at, d in openers if scan.enclosed(at)]
    closers = [_marker(d) for at, d in reversed(openers) if not scan.enclosed(at)]
    return removals, cut, appended + "".join(closers)


def _removal_plan(src: str) -> _Plan:
    """`_plan` with the open delimiters and code spans removed instead of closed."""
    removals, cut, _ = _plan(src)
    scan = _scan(src)
    removals = removals + [(at, len(_marker(d))) for at, d in scan.unmatched if d.open and at < cut]
    removals += [(at, length) for at, length in scan.marks.backticks if at < cut]
    return sorted(set(removals)), cut, ""


def _apply(lines: list[str], first: int, src: str, plan: _Plan) -> str | None:
    """The plan, made on the inline source, carried over to the source lines."""
    removals, cut, appended = plan
    src_lines = src.split("\n")
    starts = [0]
    for line in src_lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)

    def locate(offset: int) -> tuple[int, int] | None:
        k = bisect_right(starts, offset) - 1
        row = first + k
        inline, source = src_lines[k].rstrip(), lines[row].rstrip() if row < len(lines) else ""
        if row >= len(lines) or not source.endswith(inline):
            return None  # not a verbatim suffix of its line: leave the text alone
        return row, len(source) - len(inline) + min(offset - starts[k], len(inline))

    end = locate(cut)
    if end is None:
        return None
    out = [*lines[: end[0]], lines[end[0]][: end[1]]]
    for offset, length in sorted(removals, reverse=True):
        spot = locate(offset)
        if spot is None:
            return None
        if spot < end:
            row, col = spot
            out[row] = out[row][:col] + out[row][col + length :]
    return "\n".join(out).rstrip() + appended


@dataclass
class _Scan:
    unmatched: list[tuple[int, Delimiter]]
    """Delimiters that neither open nor close a pair, with their offsets, in order."""
    pairs: list[tuple[int, int]]
    """Offsets of the opener and closer of each matched pair."""
    marks: _Marks

    def enclosed(self, offset: int) -> bool:
        return any(start < offset < end for start, end in self.pairs)


def _scan(src: str) -> _Scan:
    md = _recording_parser()
    marks = _Marks()
    state = StateInline(src, md, {_MARKS: marks}, [])
    md.inline.tokenize(state)
    link_pairs(state)  # markdown-it's own pairing of delimiters
    delimiters = state.delimiters
    at = marks.delimiters
    closers = {d.end for d in delimiters if d.end >= 0}
    unmatched = [
        (at[id(d)], d)
        for i, d in enumerate(delimiters)
        if d.end < 0 and i not in closers and id(d) in at
    ]
    unmatched.sort(key=lambda pair: pair[0])
    pairs = [
        (at[id(d)], at[id(delimiters[d.end])])
        for d in delimiters
        if d.end >= 0 and id(d) in at and id(delimiters[d.end]) in at
    ]
    return _Scan(unmatched, pairs, marks)


def _marker(delimiter: Delimiter) -> str:
    char = chr(delimiter.marker)
    return char * 2 if char == "~" else char


@cache
def _recording_parser() -> MarkdownIt:
    md = new_parser()
    md.inline.ruler.at("emphasis", _recording_delimiters(emphasis.tokenize, 1))
    md.inline.ruler.at("strikethrough", _recording_delimiters(strikethrough.tokenize, 2))
    md.inline.ruler.at("backticks", _recording_backticks)
    md.inline.ruler.at("link", _recording_brackets)
    return md


def _top_marks(state: StateInline, silent: bool) -> _Marks | None:
    marks = state.env.get(_MARKS)
    return marks if isinstance(marks, _Marks) and not silent and state.level == 0 else None


def _recording_delimiters(rule: _Rule, width: int) -> _Rule:
    def recorded(state: StateInline, silent: bool) -> bool:
        start, before = state.pos, len(state.delimiters)
        matched = rule(state, silent)
        marks = _top_marks(state, silent)
        if matched and marks is not None:
            added = state.delimiters[before:]
            # An odd "~" before "~~" pairs is literal and has no delimiter.
            skip = state.pos - start - width * len(added)
            for i, delimiter in enumerate(added):
                marks.delimiters[id(delimiter)] = start + skip + i * width
        return matched

    return recorded


def _recording_backticks(state: StateInline, silent: bool) -> bool:
    start, count = state.pos, len(state.tokens)
    matched = backtick(state, silent)
    marks = _top_marks(state, silent)
    if matched and marks is not None and len(state.tokens) == count:
        marks.backticks.append((start, state.pos - start))
    return matched


def _recording_brackets(state: StateInline, silent: bool) -> bool:
    start = state.pos
    matched = link(state, silent)
    marks = _top_marks(state, silent)
    if not matched and marks is not None and state.src[start] == "[":
        marks.brackets.append(start)
    return matched
