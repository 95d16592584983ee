"""`AnswerMessages`: the messages of one answer, each recorded before the next is sent,
recorded ones finished in place, nothing preliminary drawn after the final answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from bridge.chat import AnswerMessages
from bridge.scheduler import OutputScheduler, Rate


class Platform:
    """A chat platform's messages as `MessageCalls` see them, with every call in order."""

    def __init__(self) -> None:
        self.texts: dict[int, str] = {}
        self.calls: list[tuple[str, int, str]] = []
        self.recorded: list[int] = []

    async def post(self, index: int, content: str) -> int:
        message = 100 + len(self.texts)
        self.texts[message] = content
        self.calls.append(("post", message, content))
        return message

    async def edit(self, message: int, content: str) -> None:
        self.texts[message] = content
        self.calls.append(("edit", message, content))

    async def posted(self, index: int, message: int) -> None:
        self.recorded.append(message)
        self.calls.append(("recorded", message, ""))

    def buckets(self, *, posting: bool) -> list[str]:
        return ["post"] if posting else []


@pytest.fixture
async def scheduler() -> AsyncIterator[OutputScheduler]:
    async with OutputScheduler.open(default=Rate(per_second=1000, burst=1000)) as running:
        yield running


async def test_each_message_is_recorded_before_the_next_is_sent(
    scheduler: OutputScheduler,
) -> None:
    platform = Platform()
    messages = AnswerMessages[str, int](scheduler, "chat:1", platform)
    with anyio.fail_after(5):
        await messages.place("…")
        await messages.finish(["one", "two", "three"])
    assert platform.calls == [
        ("post", 100, "…"),
        ("recorded", 100, ""),
        ("edit", 100, "one"),
        ("post", 101, "two"),
        ("recorded", 101, ""),
        ("post", 102, "three"),
        ("recorded", 102, ""),
    ]
    assert messages.ids == [100, 101, 102]


async def test_recorded_messages_are_edited_and_only_the_rest_is_sent(
    scheduler: OutputScheduler,
) -> None:
    platform = Platform()
    platform.texts = {7: "partial", 8: "old part"}
    messages = AnswerMessages[str, int](scheduler, "chat:1", platform, ids=[7, 8])
    with anyio.fail_after(5):
        await messages.place("…")
        await messages.finish(["one", "two", "three"])
    assert platform.texts == {7: "one", 8: "two", 102: "three"}
    assert platform.recorded == [102]


async def test_an_edit_to_what_a_message_shows_is_skipped(scheduler: OutputScheduler) -> None:
    platform = Platform()
    messages = AnswerMessages[str, int](scheduler, "chat:1", platform, key=str.strip)
    with anyio.fail_after(5):
        await messages.place("answer")
        await messages.finish(["answer  "])
    assert [call[0] for call in platform.calls] == ["post", "recorded"]


async def test_no_refresh_is_drawn_after_the_final_answer(scheduler: OutputScheduler) -> None:
    platform = Platform()
    messages = AnswerMessages[str, int](scheduler, "chat:1", platform)
    drawing, release = anyio.Event(), anyio.Event()

    async def slow_refresh() -> None:
        drawing.set()
        await release.wait()
        await messages.draw(0, "preliminary")

    async def late_refresh() -> None:
        await messages.draw(0, "stale")

    with anyio.fail_after(5):
        messages.refresh(slow_refresh, destination="chat:1:draft")
        await drawing.wait()
        async with anyio.create_task_group() as group:
            group.start_soon(messages.finish, ["final"])
            release.set()
        messages.refresh(late_refresh)
        await scheduler.submit("chat:1", anyio.lowlevel.checkpoint)
    assert platform.texts == {100: "final"}
    assert [call[0] for call in platform.calls] == ["post", "recorded", "edit"]
