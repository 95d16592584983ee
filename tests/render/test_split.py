"""split_markdown: parts under the limit, cut at block boundaries, nothing lost."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.render import split_markdown, utf16_len
from tests.render.strategies import Doc, documents

_FENCE_LINE = re.compile(r"[ \t>]*(`{3,}|~{3,})(python|js)?[ \t]*")
_DELIMITER_ROW = re.compile(r"\|(?:-+\|)+")


def content(text: str) -> str:
    """Text without whitespace, fence lines and repeated table headers (parts add those)."""
    kept: list[str] = []
    headers: set[str] = set()
    for line in text.split("\n"):
        bare = re.sub(r"\s+", "", line)
        if _FENCE_LINE.fullmatch(line):
            continue
        if _DELIMITER_ROW.fullmatch(bare) and kept:
            header = kept[-1] + bare
            if header in headers:
                kept.pop()
                continue
            headers.add(header)
        kept.append(bare)
    return "".join(kept)


def test_short_text_is_one_part() -> None:
    assert split_markdown("hello *world*\n", 100) == ["hello *world*"]
    assert split_markdown(" \n\n ", 100) == []


def test_cuts_fall_between_paragraphs_and_headings() -> None:
    text = "# Title\n\nfirst paragraph here\n\nsecond paragraph here\n"
    assert split_markdown(text, 30) == ["# Title\n\nfirst paragraph here", "second paragraph here"]


def test_a_long_list_is_cut_between_items() -> None:
    text = "- item one is long\n- item two is long\n- item three\n"
    assert split_markdown(text, 40) == ["- item one is long\n- item two is long", "- item three"]


def test_a_fence_that_fits_is_moved_whole_to_the_next_part() -> None:
    text = "intro text\n\n```py\nx = 1\ny = 2\n```\n"
    assert split_markdown(text, 28) == ["intro text", "```py\nx = 1\ny = 2\n```"]


def test_a_fence_that_exactly_fits_is_not_cut_for_the_blank_lines_after_it() -> None:
    fence = "```\n" + "x" * 20 + "\n```"
    assert split_markdown(f"{fence}\n\n\n\nafter", len(fence)) == [fence, "after"]


def test_a_fence_longer_than_the_limit_is_closed_and_reopened_with_its_info() -> None:
    body = "\n".join(f"line {i}" for i in range(10))
    parts = split_markdown(f"```python\n{body}\n```\n", 40)
    assert len(parts) > 1
    for part in parts:
        assert part.startswith("```python\n") and part.endswith("\n```")
        assert len(part) <= 40
    assert "\n".join(p.removeprefix("```python\n").removesuffix("\n```") for p in parts) == body


def test_an_unclosed_fence_is_closed_in_every_part() -> None:
    parts = split_markdown("~~~~\n" + "word\n" * 20, 30)
    assert len(parts) > 1
    assert all(p.startswith("~~~~\n") and p.endswith("\n~~~~") for p in parts)


def test_a_fence_inside_a_list_item_reopens_without_the_list_marker() -> None:
    body = "\n".join(f"   code {i}" for i in range(8))
    parts = split_markdown(f"1. ```sh\n{body}\n   ```\n", 50)
    assert parts[0].startswith("1. ```sh\n")
    assert all(p.startswith("   ```sh\n") for p in parts[1:])
    assert all(p.endswith("   ```") for p in parts)


def test_a_long_table_repeats_its_header_in_every_part() -> None:
    rows = "\n".join(f"| {i} | value {i} |" for i in range(10))
    parts = split_markdown(f"| n | v |\n|---|---|\n{rows}\n", 60)
    assert len(parts) > 1
    assert all(p.startswith("| n | v |\n|---|---|\n") for p in parts)


def test_a_long_paragraph_is_cut_between_words_and_a_long_word_anywhere() -> None:
    assert split_markdown("aaa bbb ccc ddd", 8) == ["aaa bbb", "ccc ddd"]
    assert split_markdown("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_a_cut_inside_a_line_does_not_start_a_part_with_block_syntax() -> None:
    parts = split_markdown("aa bb - cc", 6)
    assert parts == ["aa", "bb -", "cc"]


def test_the_length_function_decides_what_fits() -> None:
    text = "😀" * 6 + " " + "😀" * 6
    assert split_markdown(text, 13) == [text]
    assert split_markdown(text, 13, length=utf16_len) == ["😀" * 6, "😀" * 6]


def test_a_limit_that_cannot_hold_anything_is_refused() -> None:
    with pytest.raises(ValueError):
        split_markdown("text", 0)
    with pytest.raises(ValueError):
        split_markdown("😀😀", 1, length=utf16_len)


@settings(max_examples=200, deadline=None)
@given(doc=documents, limit=st.integers(24, 400), utf16=st.booleans())
def test_parts_fit_and_keep_all_content(doc: Doc, limit: int, utf16: bool) -> None:
    lines = doc.markdown.split("\n")
    headers = [a for a, b in pairwise(lines) if _DELIMITER_ROW.fullmatch(b)]
    assume(len(set(headers)) == len(headers))  # so a repeated header is one the split added
    length = utf16_len if utf16 else len
    parts = split_markdown(doc.markdown, limit, length=length)
    assert parts
    for part in parts:
        assert 0 < length(part) <= limit
        assert part == part.rstrip() and not part.startswith("\n")
    assert content("\n".join(parts)) == content(doc.markdown)
