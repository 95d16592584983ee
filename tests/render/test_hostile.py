"""Hostile Markdown (deep emphasis, lists and quotes, 100k-character lines, unbalanced
fences) through every renderer: never an exception, every limit kept."""

from __future__ import annotations

from bridge_slack._render import body_blocks, final_parts
from bridge_telegram._render import render_final, render_preview
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.render import (
    SLACK_MARKDOWN_TEXT_LIMIT,
    SLACK_TEXT_LIMIT,
    TELEGRAM_TEXT_LIMIT,
    heal_markdown,
    slack_preview,
    split_markdown,
    split_slack_markdown,
    to_slack_mrkdwn,
    to_slack_mrkdwn_parts,
    to_telegram,
    utf16_len,
)

_DEPTH = st.integers(min_value=15, max_value=900)
_MARK = st.sampled_from(["*", "_", "**", "~~", "`", "[", "![", "<", "&"])


def _emphasis(marker: str, depth: int) -> str:
    return marker * depth + "a" + marker * depth


def _openers(marker: str, depth: int) -> str:
    return "".join(f"{marker}w " for _ in range(depth)) + "".join(
        "w" + marker for _ in range(depth)
    )


def _lists(depth: int) -> str:
    return "\n".join("  " * i + ("- " if i % 2 else "1. ") + "item" for i in range(depth))


def _quotes(depth: int) -> str:
    return ">" * depth + " deep\n" + "\n".join("> " * i + "q" for i in range(depth))


def _fences(depth: int) -> str:
    return "```py\n" + "x = 1\n" * depth + "~~~\n````\n" + "```" * depth


HOSTILE = st.one_of(
    st.builds(_emphasis, _MARK, _DEPTH),
    st.builds(_openers, _MARK, _DEPTH),
    st.builds(_lists, _DEPTH),
    st.builds(_quotes, _DEPTH),
    st.builds(_fences, _DEPTH),
    st.builds(
        lambda c, n: c * n, st.sampled_from(["a", "*", "> ", "|", "\\", "😀"]), st.just(100_000)
    ),
)
DOCS = st.lists(HOSTILE, min_size=1, max_size=3).map("\n\n".join)


@settings(max_examples=25, deadline=None)
@given(DOCS)
def test_telegram_renderers_never_raise_and_keep_the_limit(markdown: str) -> None:
    for messages in (to_telegram(markdown), to_telegram(heal_markdown(markdown))):
        assert all(utf16_len(m.text) <= TELEGRAM_TEXT_LIMIT for m in messages)
    assert render_final(markdown)
    assert utf16_len(render_preview(markdown, "🔧 Using a tool…").text) <= TELEGRAM_TEXT_LIMIT


@settings(max_examples=25, deadline=None)
@given(DOCS)
def test_slack_renderers_never_raise_and_keep_the_limits(markdown: str) -> None:
    to_slack_mrkdwn(markdown)
    assert all(len(p) <= SLACK_TEXT_LIMIT for p in to_slack_mrkdwn_parts(markdown))
    assert all(len(p) <= SLACK_MARKDOWN_TEXT_LIMIT for p in split_slack_markdown(markdown))
    assert all(len(p) <= SLACK_MARKDOWN_TEXT_LIMIT for p in final_parts(markdown))
    slack_preview(heal_markdown(markdown))
    body_blocks(markdown)


@settings(max_examples=25, deadline=None)
@given(DOCS, st.integers(min_value=50, max_value=5000))
def test_splitting_never_raises_and_loses_no_visible_character(markdown: str, limit: int) -> None:
    parts = split_markdown(markdown, limit)
    assert all(len(part) <= limit for part in parts)
    assert sum(not c.isspace() for c in "".join(parts)) >= sum(not c.isspace() for c in markdown)
