"""escape_slack_markdown: agent Markdown made safe for Slack, losslessly for readers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.render import escape_slack_markdown, to_slack_mrkdwn

PINGS = "<!channel> <!here|here> <!everyone> <!subteam^S01|@ops> <@U01> <@W02|w> <#C1>"


def _shown(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@given(st.text(alphabet=st.sampled_from("<>&!@^|#aU0 \n>"), max_size=200))
def test_no_control_sequence_survives_and_readers_see_the_original(text: str) -> None:
    escaped = escape_slack_markdown(text)
    assert "<" not in escaped
    assert _shown(escaped) == text


@given(st.text(max_size=100), st.booleans())
def test_a_cut_anywhere_escapes_the_same_as_the_whole(text: str, at_start: bool) -> None:
    cut = len(text) // 2
    head = escape_slack_markdown(text[:cut])
    tail = escape_slack_markdown(text[cut:], at_line_start=cut == 0 or text[cut - 1] == "\n")
    assert head + tail == escape_slack_markdown(text)


def test_quote_markers_stay_markdown_and_everything_else_is_escaped() -> None:
    assert escape_slack_markdown("> a < b\n>> c & d\nx > y") == (
        "> a &lt; b\n>> c &amp; d\nx &gt; y"
    )
    assert escape_slack_markdown("> mid-line", at_line_start=False) == "&gt; mid-line"


def test_allowed_kinds_of_mention_are_restored_and_only_those() -> None:
    escaped = escape_slack_markdown(PINGS, allow=["users", "here"])
    assert "<@U01>" in escaped and "<@W02|w>" in escaped and "<!here|here>" in escaped
    assert "&lt;!channel&gt;" in escaped and "&lt;!everyone&gt;" in escaped
    assert "&lt;!subteam^S01|@ops&gt;" in escaped and "&lt;#C1&gt;" in escaped


def test_mrkdwn_links_to_other_schemes_stay_text() -> None:
    assert to_slack_mrkdwn("[x](!here) [y](@U1) [z](mailto:a@b.c)") == "x y <mailto:a@b.c|z>"
