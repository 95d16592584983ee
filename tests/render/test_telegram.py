"""to_telegram: plain text plus entities Telegram accepts, split at its limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.render import TelegramEntity, TelegramMessage, to_telegram, utf16_len
from tests.render.strategies import Doc, documents

NESTABLE = {"bold", "italic", "strikethrough", "underline", "spoiler"}


def covered(message: TelegramMessage, entity: TelegramEntity) -> str:
    units = message.text.encode("utf-16-le")
    start = entity["offset"] * 2
    return units[start : start + entity["length"] * 2].decode("utf-16-le")


def shown(markdown: str) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (m.text, [(e["type"], covered(m, e)) for e in m.entities]) for m in to_telegram(markdown)
    ]


def test_inline_formatting_becomes_entities() -> None:
    assert shown("a **b** _c_ ~~d~~ `e` [f](https://x.y/)") == [
        (
            "a b c d e f",
            [
                ("bold", "b"),
                ("italic", "c"),
                ("strikethrough", "d"),
                ("code", "e"),
                ("text_link", "f"),
            ],
        )
    ]
    [message] = to_telegram("[f](https://x.y/)")
    assert message.entities == [
        {"type": "text_link", "offset": 0, "length": 1, "url": "https://x.y/"}
    ]


def test_offsets_count_utf16_code_units() -> None:
    [message] = to_telegram("😀 **𝔘x** é")
    assert message.text == "😀 𝔘x é"
    assert message.entities == [{"type": "bold", "offset": 3, "length": 3}]


def test_code_blocks_keep_their_language_and_tables_become_pre() -> None:
    [message] = to_telegram("```python\nprint(1)\n```\n\n| a | bb |\n|---|---|\n| 1 | 2 |")
    assert message.text == "print(1)\n\na | bb\n--+---\n1 | 2"
    assert message.entities == [
        {"type": "pre", "offset": 0, "length": 8, "language": "python"},
        {"type": "pre", "offset": 10, "length": 19},
    ]


def test_headings_are_bold_lists_get_markers_and_quotes_are_blockquotes() -> None:
    assert shown("# Plan\n\n- one\n  - deep\n- two\n\n3. three\n4. four\n\n> said **so**") == [
        (
            "Plan\n\n• one\n  • deep\n• two\n\n3. three\n4. four\n\nsaid so",
            [("bold", "Plan"), ("blockquote", "said so"), ("bold", "so")],
        )
    ]


def test_links_telegram_cannot_open_stay_plain_and_links_hold_no_code() -> None:
    assert shown("[rel](docs/x.md) [`code`](https://x.y)") == [
        ("rel code", [("text_link", "code")])
    ]


def test_nested_quotes_become_one_blockquote() -> None:
    assert shown("> a\n>\n> > b") == [("a\n\nb", [("blockquote", "a\n\nb")])]


def test_long_text_is_split_at_paragraphs_and_entities_are_split_with_it() -> None:
    text = "**" + "word " * 10 + "end**\n\nnext paragraph"
    messages = to_telegram(text, limit=40)
    assert [m.text for m in messages] == [
        "word word word word word word word word",
        "word word end\n\nnext paragraph",
    ]
    assert [m.entities for m in messages] == [
        [{"type": "bold", "offset": 0, "length": 39}],
        [{"type": "bold", "offset": 0, "length": 13}],
    ]


def test_a_code_block_that_fits_moves_whole_to_the_next_message() -> None:
    messages = to_telegram("intro words here\n\n```\nline a\n\nline b\n```", limit=24)
    assert [m.text for m in messages] == ["intro words here", "line a\n\nline b"]


def test_a_long_code_block_is_split_into_two_pre_entities() -> None:
    code = "\n".join(f"line {i}" for i in range(12))
    messages = to_telegram(f"```sh\n{code}\n```", limit=30)
    assert len(messages) > 1
    for message in messages:
        assert message.entities == [
            {"type": "pre", "offset": 0, "length": utf16_len(message.text), "language": "sh"}
        ]
    assert "\n".join(m.text for m in messages) == code


def test_whitespace_only_text_gives_no_message() -> None:
    assert to_telegram("  \n\n ") == []


def _check(message: TelegramMessage, limit: int) -> None:
    size = utf16_len(message.text)
    assert 0 < size <= limit
    spans = []
    for e in message.entities:
        assert e["offset"] >= 0 and e["length"] > 0 and e["offset"] + e["length"] <= size
        spans.append((e["offset"], e["offset"] + e["length"], e["type"]))
    assert spans == sorted(spans, key=lambda s: (s[0], -s[1])), "listed outer first"
    for i, (a_start, a_end, a_type) in enumerate(spans):
        for b_start, b_end, b_type in spans[:i]:  # b is listed first: b holds a if they meet
            if a_end <= b_start or b_end <= a_start:
                continue  # disjoint
            a_inside = a_start >= b_start and a_end <= b_end
            assert a_inside or (b_start >= a_start and b_end <= a_end), (a_type, b_type)
            outer, inner = (b_type, a_type) if a_inside else (a_type, b_type)
            assert outer not in ("code", "pre"), (outer, inner)
            if outer not in NESTABLE and inner not in NESTABLE:
                # Telegram: beyond the simple styles, only a quote holds other entities.
                assert outer == "blockquote" and inner != "blockquote", (outer, inner)


@settings(max_examples=200, deadline=None)
@given(doc=documents, limit=st.one_of(st.just(4096), st.integers(30, 400)))
def test_messages_fit_entities_nest_and_no_word_is_lost(doc: Doc, limit: int) -> None:
    messages = to_telegram(doc.markdown, limit=limit)
    for message in messages:
        _check(message, limit)
    text = "".join(m.text for m in messages)
    for word in doc.words:
        assert word in text


@settings(max_examples=30, deadline=None)
@given(doc=documents, copies=st.integers(10, 60))
def test_long_documents_split_at_the_default_limit(doc: Doc, copies: int) -> None:
    messages = to_telegram("\n\n".join([doc.markdown] * copies))
    for message in messages:
        _check(message, 4096)
    text = "".join(m.text for m in messages)
    assert all(word in text for word in doc.words)
