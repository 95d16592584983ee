"""heal_markdown: every streamed prefix renders without broken formatting."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bridge.render import heal_markdown, to_telegram
from tests.render.strategies import Doc, documents

MARKERS = set("*_~`[]")


def visible(markdown: str) -> str:
    return "".join(message.text for message in to_telegram(markdown))


@pytest.mark.parametrize(
    ("partial", "healed"),
    [
        ("hello **wor", "hello **wor**"),
        ("hello **", "hello"),
        ("hello **world**", "hello **world**"),
        ("a _b **c", "a _b **c**_"),
        ("x ~~strike", "x ~~strike~~"),
        ("x ~~s~", "x ~~s~~"),
        ("x ~", "x"),
        ("run `pip inst", "run `pip inst`"),
        ("run `", "run"),
        ("**a `b", "**a `b`**"),
        ("see [docs](https://exa", "see docs"),
        ("see [docs", "see docs"),
        ("see ![chart](http", "see chart"),
        ("> quote **bo", "> quote **bo**"),
        ("- item *it", "- item *it*"),
        ("# Title **b", "# Title **b**"),
        ("snake_case_na", "snake_case_na"),
        ("2 * 3 = **six", "2 * 3 = **six**"),
    ],
)
def test_dangling_inline_markup_is_closed_or_dropped(partial: str, healed: str) -> None:
    assert heal_markdown(partial) == healed


def test_an_open_fence_is_closed() -> None:
    assert heal_markdown("intro\n\n```py\nx = 1") == "intro\n\n```py\nx = 1\n```"


def test_a_half_typed_closing_fence_is_replaced() -> None:
    assert heal_markdown("```py\nx = 1\n``") == "```py\nx = 1\n```"


def test_a_fence_without_content_yet_is_dropped() -> None:
    assert heal_markdown("intro\n\n```pyth") == "intro"


def test_a_fence_in_a_list_item_is_closed_at_the_item_indent() -> None:
    assert heal_markdown("- step\n\n  ```\n  make") == "- step\n\n  ```\n  make\n  ```"


def test_complete_text_is_returned_unchanged() -> None:
    text = "# Done\n\nAll **fine** and `ok`.\n\n```\ncode\n```\n"
    assert heal_markdown(text) == text
    assert heal_markdown("a **b** c\n\n") == "a **b** c\n\n"


@settings(max_examples=200, deadline=None)
@given(doc=documents, data=st.data())
def test_every_prefix_heals_to_clean_stable_markdown(doc: Doc, data: st.DataObject) -> None:
    assume(not MARKERS & set(visible(doc.markdown)))
    cut = data.draw(st.integers(0, len(doc.markdown)), label="cut")
    healed = heal_markdown(doc.markdown[:cut])
    assert not MARKERS & set(visible(healed)), healed
    assert heal_markdown(healed) == healed
