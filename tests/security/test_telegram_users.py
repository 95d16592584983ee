"""Hostile Telegram users, over real sockets (fake Bot API, emulator, bridge): acting on
someone else's turn in a group, choosing agents outside the allow-lists, flooding messages
and files, and text the bot echoes back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from bridge_telegram.testing import FakeBotAPI, FakeUser

from bridge.emulator import Emulator
from tests.telegram.conftest import ALICE, BOB, GROUP, running_bridge

CAROL = FakeUser(44, "Carol", "carol")  # an administrator of the group
DAVE = FakeUser(45, "Dave", "dave")  # a configured admin of the bridge
MENTION = "@bridge_test_bot"
NOT_YOURS = "Only the person who asked"


class _LogWatch(logging.Handler):
    """Counts log records containing `needle`; `reach(n)` waits for the n-th."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.INFO)
        self.needle, self.count, self._changed = needle, 0, anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.needle in record.getMessage():
            self.count += 1
            self._changed.set()
            self._changed = anyio.Event()

    async def reach(self, count: int) -> None:
        while self.count < count:
            await self._changed.wait()


@contextmanager
def _watching(needle: str) -> Iterator[_LogWatch]:
    logger = logging.getLogger("bridge_telegram._service")
    watch, level = _LogWatch(needle), logger.level
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(level)


def _texts(fake: FakeBotAPI, chat: int, needle: str) -> list[str]:
    return [m.text for m in fake.sent(chat) if needle in m.text]


async def _says(fake: FakeBotAPI, user: FakeUser, chat: int, text: str, expect: str) -> str:
    """`user` writes `text` in `chat`; returns the next new bot message containing `expect`."""
    before = len(_texts(fake, chat, expect))
    fake.queue(user.says(fake, chat, text))
    with anyio.fail_after(10):
        await fake.wait_for(lambda: len(_texts(fake, chat, expect)) > before)
    return _texts(fake, chat, expect)[-1]


async def _running_task(
    emulator: Emulator, fake: FakeBotAPI, user: FakeUser, chat: int = GROUP
) -> str:
    """`user` asks the slow agent; returns its task once it executes."""
    before = len(emulator.invokes())
    fake.queue(user.says(fake, chat, f"{MENTION} take your time"))
    with anyio.fail_after(10):
        await fake.wait_for(lambda: len(emulator.invokes()) > before)
        task = emulator.invokes()[-1].thread_id
        assert task is not None
        await emulator.wait_for_status(task, "executing")
    return task


async def test_in_a_group_only_the_requester_and_admins_stop_reset_or_switch(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    telegram.chat(GROUP, "supergroup", title="Team")
    telegram.members[(GROUP, CAROL.id)] = "administrator"
    async with running_bridge(emulator, telegram, default_agent="slow", admins=[str(DAVE.id)]):
        task = await _running_task(emulator, telegram, ALICE)
        for command in ("/stop", "/new", "/agent echo"):
            await _says(telegram, BOB, GROUP, command, NOT_YOURS)
        assert emulator.tasks[task].status == "executing"
        [invoke] = emulator.invokes()
        assert invoke.agent_id == emulator.agent("slow").id
        await _says(telegram, ALICE, GROUP, "/stop", "Stopped")  # the requester
        assert emulator.tasks[task].status == "stopped"

        task = await _running_task(emulator, telegram, ALICE)
        await _says(telegram, CAROL, GROUP, "/stop", "Stopped")  # a chat administrator
        assert emulator.tasks[task].status == "stopped"
        await _says(telegram, CAROL, GROUP, "/agent echo", "Now talking to")  # cached
        await _says(telegram, DAVE, GROUP, "/new", "Fresh conversation")  # a configured admin
    asked = [c.params for c in telegram.calls_to("getChatMember")]
    assert [int(p["user_id"]) for p in asked] == [BOB.id, CAROL.id]


async def test_a_group_can_give_each_user_their_own_conversation(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    telegram.chat(GROUP, "supergroup", title="Team")
    async with running_bridge(emulator, telegram, group_conversation="user"):
        await _says(telegram, ALICE, GROUP, f"{MENTION} alpha", "alpha")
        await _says(telegram, BOB, GROUP, f"{MENTION} bravo", "bravo")
        await _says(telegram, BOB, GROUP, "/new", "Fresh conversation")  # his own: allowed
        await _says(telegram, ALICE, GROUP, f"{MENTION} charlie", "charlie")
    alpha, bravo, charlie = emulator.invokes()
    assert charlie.thread_id == alpha.thread_id != bravo.thread_id


async def test_agents_outside_the_allow_lists_cannot_be_listed_or_chosen(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    telegram.chat(GROUP, "supergroup", title="Team")
    route = {"agent": "researcher", "allowed_agents": ["researcher"]}
    options = {"allowed_agents": ["echo", "writer"], "routes": {str(GROUP): route}}
    async with running_bridge(emulator, telegram, **options):
        listing = await _says(telegram, ALICE, ALICE.id, "/agent", "Agents")
        refused = await _says(telegram, ALICE, ALICE.id, "/agent researcher", "No agent named")
        await _says(telegram, ALICE, ALICE.id, "still echo", "still echo")
        in_group = await _says(telegram, ALICE, GROUP, "/agent", "Agents")
        await _says(telegram, ALICE, GROUP, "/agent echo", "No agent named")
    assert "echo" in listing and "writer" in listing
    assert "researcher" not in listing and "slow" not in listing
    assert "researcher" in refused
    assert "researcher" in in_group and "echo" not in in_group
    [invoke] = emulator.invokes()
    assert invoke.agent_id == emulator.agent("echo").id


async def test_one_users_flood_reaches_upstream_at_most_a_bucket_worth(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    limits = {"user_rate_limit": 5, "user_rate_window": 3600, "max_queued": 10}
    with _watching("over the rate limit") as refused:
        async with running_bridge(emulator, telegram, **limits):
            for number in range(150):
                telegram.queue(ALICE.says(telegram, ALICE.id, f"message {number}"))
            with anyio.fail_after(30):
                await refused.reach(145)
                await telegram.wait_for(lambda: len(_texts(telegram, ALICE.id, "message ")) == 5)
            await _says(telegram, BOB, BOB.id, "other users still get answers", "other users")
    assert len(emulator.invokes()) == 6
    assert len(_texts(telegram, ALICE.id, "slow down")) == 1
    assert refused.count == 145


async def test_a_full_queue_drops_the_message_and_says_so(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    async with running_bridge(emulator, telegram, default_agent="slow", max_queued=2):
        fake = telegram
        await _running_task(emulator, fake, ALICE, ALICE.id)
        for number in range(4):
            fake.queue(ALICE.says(fake, ALICE.id, f"later {number}"))
        with anyio.fail_after(10):
            await fake.wait_for(
                lambda: (
                    len(_texts(fake, ALICE.id, "dropped this one")) == 2
                    and len(_texts(fake, ALICE.id, "after the current reply")) == 2
                )
            )
        assert len(emulator.invokes()) == 1


async def test_forwarding_a_big_file_many_times_holds_no_bytes(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    big = b"x" * (19 * 1024 * 1024)
    async with running_bridge(emulator, telegram, user_rate_limit=40, max_queued=40) as (
        runtime,
        _,
    ):
        for _ in range(12):
            message = ALICE.says(telegram, ALICE.id, "again", document=("big.bin", big))
            telegram.queue(message)
        with anyio.fail_after(60):
            await telegram.wait_for(lambda: len(_texts(telegram, ALICE.id, "again")) == 12)
        urls = [url for invoke in emulator.invokes() for url in invoke.json["input"]["files"]]
    assert len(urls) == 12 and all(url.startswith(runtime.http.base_url) for url in urls)
    assert not telegram.calls_to("getFile")  # nothing was fetched: only sealed references
    assert all(telegram.token not in url for url in urls)


async def test_user_text_echoed_by_the_bot_is_plain(
    emulator: Emulator, telegram: FakeBotAPI
) -> None:
    hostile = "**[you](tg://user?id=1)** `x"
    document = (f"{hostile}.txt", b"z" * 2048)
    async with running_bridge(emulator, telegram, max_file_bytes=1024):
        await _says(telegram, ALICE, ALICE.id, f"/agent {hostile}", "No agent named")
        telegram.queue(ALICE.says(telegram, ALICE.id, "read it", document=document))
        with anyio.fail_after(10):
            await telegram.wait_for(lambda: _texts(telegram, ALICE.id, "too large"))
    echoed = [m for m in telegram.sent(ALICE.id) if hostile in m.text]
    assert len(echoed) == 2
    assert not any(m.entities for m in echoed)
