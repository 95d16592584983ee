"""Previews of answers still being written: healed, within the limit, under a status line."""

from __future__ import annotations

from bridge.render import (
    SLACK_MARKDOWN_TEXT_LIMIT,
    TELEGRAM_TEXT_LIMIT,
    TelegramMessage,
    slack_preview,
    telegram_preview,
    with_status_line,
)


def test_a_telegram_preview_heals_the_partial_answer_under_an_italic_status_line() -> None:
    preview = telegram_preview("Hello **wor", "🔧 search…")
    assert preview.text == "🔧 search…\n\nHello wor"
    status_units = len("🔧 search…".encode("utf-16-le")) // 2
    assert preview.entities == [
        {"type": "italic", "offset": 0, "length": status_units},
        {"type": "bold", "offset": status_units + 2 + 6, "length": 3},
    ]


def test_a_status_line_that_would_overflow_the_message_is_left_out() -> None:
    full = TelegramMessage("x" * (TELEGRAM_TEXT_LIMIT - 3))
    assert with_status_line(full, "⏳ working") == full
    assert with_status_line(TelegramMessage(""), "⏳ working").text == "⏳ working"


def test_a_slack_preview_is_healed_and_cut_to_the_limit() -> None:
    assert slack_preview("some `code") == "some `code`"
    long = slack_preview("word " * 5000, limit=1000)
    assert len(long) <= 1000 and long.endswith(" …")
    assert len(slack_preview("a" * SLACK_MARKDOWN_TEXT_LIMIT)) <= SLACK_MARKDOWN_TEXT_LIMIT
