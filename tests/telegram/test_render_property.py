"""Property: whatever Markdown an agent writes, the Bot API accepts every message we send."""

from __future__ import annotations

import anyio
import anyio.from_thread
import anyio.to_thread
from bridge_telegram import TelegramConfig
from bridge_telegram._outbound import Sender, TelegramPlace
from bridge_telegram._render import render_final, render_preview
from bridge_telegram.adapter import build_application
from bridge_telegram.testing import FakeBotAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.scheduler import OutputScheduler

WORD = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
    | st.sampled_from("😀𝔘é*_`[]()~|#>\\"),
    min_size=1,
    max_size=12,
)
INLINE = st.one_of(
    WORD,
    WORD.map(lambda w: f"**{w}**"),
    WORD.map(lambda w: f"_{w}_"),
    WORD.map(lambda w: f"`{w}`"),
    WORD.map(lambda w: f"~~{w}~~"),
    st.tuples(WORD, st.integers(0, 99)).map(lambda p: f"[{p[0]}](https://example.com/{p[1]})"),
    st.tuples(WORD, WORD).map(lambda p: f"***{p[0]}** {p[1]}*"),
)
LINE = st.lists(INLINE, min_size=1, max_size=8).map(" ".join)
BLOCK = st.one_of(
    LINE,
    LINE.map(lambda t: f"# {t}"),
    st.lists(LINE, min_size=1, max_size=5).map(lambda items: "\n".join(f"- {i}" for i in items)),
    st.lists(LINE, min_size=1, max_size=5).map(lambda items: "\n".join(f"1. {i}" for i in items)),
    LINE.map(lambda t: f"> {t}"),
    st.tuples(st.sampled_from(["", "py", "json"]), st.lists(WORD, max_size=20)).map(
        lambda p: f"```{p[0]}\n" + "\n".join(p[1]) + "\n```"
    ),
    st.tuples(WORD, WORD).map(lambda p: f"| a | b |\n|---|---|\n| {p[0]} | {p[1]} |"),
    st.integers(500, 3000).map(lambda n: "```\n" + ("x = 1  # long code\n" * (n // 18)) + "```"),
    st.integers(100, 800).map(lambda n: "**" + "word " * n + "**"),
    LINE.map(lambda t: f"```py\n{t}"),  # an unclosed fence
)
MARKDOWN = st.lists(BLOCK, min_size=1, max_size=12).map("\n\n".join)


async def test_no_rendered_markdown_is_ever_rejected_for_entities_or_length(
    fake: FakeBotAPI,
) -> None:
    config = TelegramConfig(bot_token=fake.token, api_url=fake.api_url)  # type: ignore[arg-type]
    app = build_application(config)
    await app.initialize()
    try:
        async with OutputScheduler.open() as scheduler:
            sender = Sender(app.bot, scheduler)
            place = TelegramPlace(chat_id=4242)

            async def send_all(markdown: str) -> None:
                pieces = render_final(markdown)
                pieces.append(
                    render_preview(markdown[: len(markdown) // 2], "🔧 Using search_web…")
                )
                for piece in pieces:
                    if piece.text.strip():
                        await sender.post_now(place, piece)

            @settings(
                max_examples=60,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(MARKDOWN)
            def check(markdown: str) -> None:
                anyio.from_thread.run(send_all, markdown)

            await anyio.to_thread.run_sync(check)
    finally:
        await app.shutdown()
    assert fake.calls_to("sendMessage")
    assert all(call.status == 200 for call in fake.calls_to("sendMessage"))
