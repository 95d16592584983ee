"""to_slack_mrkdwn and the Slack-sized splits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.render import (
    SLACK_MARKDOWN_TEXT_LIMIT,
    split_slack_markdown,
    to_slack_mrkdwn,
    to_slack_mrkdwn_parts,
)
from tests.render.strategies import Doc, documents


def test_inline_formatting_uses_slack_markers() -> None:
    assert to_slack_mrkdwn("**b** _i_ ~~s~~ `c` [site](https://x.y/?a=1&b=2)") == (
        "*b* _i_ ~s~ `c` <https://x.y/?a=1&amp;b=2|site>"
    )


def test_ampersand_and_angle_brackets_are_escaped_even_in_code() -> None:
    assert to_slack_mrkdwn("a < b && c > d `<x>`") == "a &lt; b &amp;&amp; c &gt; d `&lt;x&gt;`"
    assert to_slack_mrkdwn("```\nif a < b:\n```") == "```\nif a &lt; b:\n```"


def test_headings_become_bold_lines_without_nested_stars() -> None:
    assert to_slack_mrkdwn("# The **plan**\n\ntext") == "*The plan*\n\ntext"


def test_lists_quotes_fences_and_tables() -> None:
    markdown = (
        "- one\n  - deep\n- two\n\n1. first\n2. second\n\n> quoted\n>\n> more\n\n"
        "```python\nx = 1\n```\n\n| a | bb |\n|---|---|\n| 1 | 2 |"
    )
    assert to_slack_mrkdwn(markdown) == (
        "• one\n  • deep\n• two\n\n1. first\n2. second\n\n> quoted\n>\n> more\n\n"
        "```\nx = 1\n```\n\n```\na | bb\n--+---\n1 | 2\n```"
    )


def test_autolinks_and_links_with_a_pipe_stay_one_link() -> None:
    assert to_slack_mrkdwn("<https://x.y/a>") == "<https://x.y/a>"
    assert to_slack_mrkdwn("[a](https://x.y/?q=a|b)") == "<https://x.y/?q=a%7Cb|a>"


def test_markdown_text_is_split_at_the_slack_limit() -> None:
    paragraph = "word " * 1000
    parts = split_slack_markdown("\n\n".join([paragraph] * 5))
    assert len(parts) == 3
    assert all(len(part) <= SLACK_MARKDOWN_TEXT_LIMIT for part in parts)


def test_mrkdwn_parts_stay_under_the_limit_after_escaping() -> None:
    parts = to_slack_mrkdwn_parts("&&&& " * 40, limit=50)
    assert all(len(part) <= 50 for part in parts)
    assert "".join(parts).count("&amp;") == 160


@settings(max_examples=100, deadline=None)
@given(doc=documents, limit=st.integers(200, 2000))
def test_mrkdwn_parts_fit_and_keep_every_word(doc: Doc, limit: int) -> None:
    parts = to_slack_mrkdwn_parts(doc.markdown, limit=limit)
    assert all(0 < len(part) <= limit for part in parts)
    text = "".join(parts)
    for word in doc.words:
        assert word in text
