"""The SSE decoder follows the WHATWG event-stream parsing rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.client import ServerSentEvent, SSEDecoder
from bridge.errors import EventTooLargeError


def decode(*chunks: bytes, limit: int = 1 << 20) -> list[ServerSentEvent]:
    decoder = SSEDecoder(limit)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def data_of(events: list[ServerSentEvent]) -> list[str]:
    return [event.data for event in events]


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_every_line_ending_separates_events(newline: bytes) -> None:
    stream = b"data: one" + newline + newline + b"data: two" + newline + newline
    assert data_of(decode(stream)) == ["one", "two"]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    assert data_of(decode(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")) == ["a", "b"]


def test_a_line_split_across_chunks_is_joined() -> None:
    assert data_of(decode(b"da", b"ta: hel", b"lo\n", b"\n")) == ["hello"]


def test_a_utf8_sequence_split_across_chunks_is_decoded() -> None:
    raw = "data: café 🌍\n\n".encode()
    split = raw.index("🌍".encode()) + 2
    assert data_of(decode(raw[:split], raw[split:])) == ["café 🌍"]


def test_keepalive_comments_after_an_id_dispatch_nothing() -> None:
    stream = b"id: 7\ndata: x\n\n: keep-alive\n\n: keep-alive\n\n\n\ndata: y\n\n"
    events = decode(stream)
    assert data_of(events) == ["x", "y"]
    assert events[1].id == "7"


def test_a_block_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\nid: 3\n\n") == []


def test_a_leading_bom_is_stripped_only_at_the_start() -> None:
    events = decode(b"\xef\xbb", b"\xbfdata: a\n\ndata: \xef\xbb\xbfb\n\n")
    assert data_of(events) == ["a", "\ufeffb"]


def test_multiple_data_lines_join_with_newlines() -> None:
    assert data_of(decode(b"data: a\ndata\ndata:b\n\n")) == ["a\n\nb"]


def test_only_one_leading_space_is_removed_from_a_value() -> None:
    assert data_of(decode(b"data:  two spaces\n\n")) == [" two spaces"]


def test_event_type_and_retry_are_read_and_invalid_retry_ignored() -> None:
    events = decode(b"event: custom\nretry: 1500\ndata: a\n\nretry: x1\ndata: b\n\n")
    assert [(e.event, e.retry) for e in events] == [("custom", 1500), ("message", 1500)]


def test_an_id_with_nul_is_ignored() -> None:
    events = decode(b"id: ok\ndata: a\n\nid: b\x00d\ndata: b\n\n")
    assert [e.id for e in events] == ["ok", "ok"]


def test_an_unterminated_event_at_the_end_is_discarded() -> None:
    assert decode(b"data: complete\n\ndata: partial\n") == [ServerSentEvent(data="complete")]


def test_an_event_over_the_bound_raises_a_stream_error() -> None:
    with pytest.raises(EventTooLargeError) as caught:
        decode(b"data: " + b"x" * 600 + b"\n", b"data: " + b"y" * 600 + b"\n\n", limit=1024)
    assert caught.value.limit == 1024


def test_a_line_without_end_over_the_bound_raises_before_buffering_more() -> None:
    decoder = SSEDecoder(1024)
    with pytest.raises(EventTooLargeError):
        for _ in range(10):
            decoder.feed(b"z" * 200)


_line_ends = st.sampled_from(["\n", "\r", "\r\n"])
_payloads = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40
)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(_payloads, min_size=1, max_size=8),
    ends=st.lists(_line_ends, min_size=1, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
    comments=st.booleans(),
)
def test_any_chunking_and_line_endings_give_the_same_events(
    payloads: list[str], ends: list[str], cuts: list[int], comments: bool
) -> None:
    parts = []
    for index, payload in enumerate(payloads):
        end = ends[index % len(ends)]
        if comments:
            parts.append(f": keep-alive{end}{end}")
        parts.append(f"data: {payload}{end}{end}")
    raw = "".join(parts).encode()
    points = sorted({min(cut, len(raw)) for cut in cuts})
    chunks = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    # One leading space is stripped, as the spec says; the payload keeps the rest.
    assert data_of(decode(*chunks)) == payloads
