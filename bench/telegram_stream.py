"""Telegram streaming: a 200-chunk, 10 s answer (writer agent, "chunks=200 seconds=10")
through the bridge in a private chat (drafts) and in a group (one edited message),
against naive bots in the same run: one that invokes synchronously then sends one
message, and one that edits its message at every chunk. All through the fake Bot API,
which answers 429 to edits closer than 0.9 s in a chat.

Prints time to first visible text, Bot API calls and 429s per case.
Goals: first text <= 0.1x the synchronous bot's wait; calls <= 0.1x the per-chunk
bot's; zero 429s for the bridge.
Run: uv run python bench/telegram_stream.py
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
from bridge_telegram import TelegramAdapter, TelegramConfig
from bridge_telegram.adapter import build_application
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api
from telegram.error import TelegramError

from bridge.client import AgentClient
from bridge.config import load_settings
from bridge.emulator import Emulator
from bridge.events import TextDelta
from bridge.render import to_telegram
from bridge.runtime import serve
from bridge.testing import open_emulator

MESSAGE = "chunks=200 seconds=10"
TEXT_METHODS = ("sendMessage", "sendMessageDraft", "editMessageText")
USER = FakeUser(7001, "Bench", "bench")


@dataclass
class Figures:
    name: str
    first_text: float
    total: float
    calls: int
    rate_limited: int

    def line(self) -> str:
        return (
            f"{self.name:<34} first text {self.first_text:6.3f}s  done {self.total:6.2f}s  "
            f"calls {self.calls:4d}  429s {self.rate_limited}"
        )


def _figures(fake: FakeBotAPI, name: str, chat_id: int, start: float, end: float) -> Figures:
    calls = [
        c for c in fake.calls if str(c.params.get("chat_id")) == str(chat_id) and c.at >= start
    ]
    first = next(c.at for c in calls if c.method in TEXT_METHODS and c.status == 200)
    limited = sum(1 for c in calls if c.status == 429)
    return Figures(name, first - start, end - start, len(calls), limited)


async def bridge_case(
    emulator: Emulator, fake: FakeBotAPI, name: str, chat_id: int, text: str
) -> Figures:
    update = fake.queue(USER.says(fake, chat_id, text))
    start = fake.queued_at[update["update_id"]]
    with anyio.fail_after(60):
        await fake.wait_for(
            lambda: len(emulator.tasks) >= 1 and _latest(emulator).status == "completed"
        )
        final = to_telegram(_latest(emulator).to_json()["result"])
        last = final[-1].text
        await fake.wait_for(lambda: any(m.text == last for m in fake.sent(chat_id)))
    return _figures(fake, name, chat_id, start, anyio.current_time())


def _latest(emulator: Emulator) -> Any:
    return list(emulator.tasks.values())[-1]


async def naive_sync(client: AgentClient, bot: Any, fake: FakeBotAPI, agent: str) -> Figures:
    chat = 9001
    fake.chat(chat)
    start = anyio.current_time()
    task = await client.invoke(agent, MESSAGE, source="telegram")
    await bot.send_message(chat, (task.result or "")[:4096])
    return _figures(fake, "naive: sync invoke, one message", chat, start, anyio.current_time())


async def naive_per_chunk(client: AgentClient, bot: Any, fake: FakeBotAPI, agent: str) -> Figures:
    chat = 9002
    fake.chat(chat)
    start = anyio.current_time()
    text, message_id = "", None
    async with client.stream(agent, MESSAGE, source="telegram") as run:
        async for event in run:
            if not isinstance(event, TextDelta):
                continue
            text += event.text
            try:
                if message_id is None:
                    message_id = (await bot.send_message(chat, text[:4096])).message_id
                else:
                    await bot.edit_message_text(text[:4096], chat_id=chat, message_id=message_id)
            except TelegramError:
                pass  # a naive bot drops what the API refuses
    return _figures(fake, "naive: edit per chunk", chat, start, anyio.current_time())


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    async with open_emulator(api_key="bench-key") as emulator, open_fake_bot_api() as fake:
        fake.chat(-5001, "supergroup", title="Bench group")
        table: dict[str, Any] = {
            "bot_token": fake.token,
            "api_url": fake.api_url,
            "default_agent": "writer",
        }
        settings = load_settings(
            overrides={
                "upstream": {"base_url": emulator.base_url, "api_key": emulator.api_key},
                "store": {"url": "memory://"},
                "http": {"port": 0},
                "adapters": {"telegram": table},
            },
            environ={},
        )
        adapter = TelegramAdapter(TelegramConfig.model_validate(table))
        results: list[Figures] = []
        async with anyio.create_task_group() as group:
            runtime = await group.start(partial(serve, settings, adapters=[adapter]))
            results.append(
                await bridge_case(emulator, fake, "bridge: private chat (drafts)", USER.id, MESSAGE)
            )
            results.append(
                await bridge_case(
                    emulator,
                    fake,
                    "bridge: group (edited message)",
                    -5001,
                    f"@{fake.username} {MESSAGE}",
                )
            )
            agent = (await runtime.client.find_agent("writer")).id
            app = build_application(adapter.config)
            await app.initialize()
            try:
                results.append(await naive_sync(runtime.client, app.bot, fake, agent))
                results.append(await naive_per_chunk(runtime.client, app.bot, fake, agent))
            finally:
                await app.shutdown()
            group.cancel_scope.cancel()
    sync, per_chunk = results[2], results[3]
    for figures in results:
        print(figures.line())
    for figures in results[:2]:
        ratio_first = figures.first_text / sync.first_text
        ratio_calls = figures.calls / per_chunk.calls
        ok = ratio_first <= 0.1 and ratio_calls <= 0.1 and figures.rate_limited == 0
        print(
            f"{figures.name:<34} first text {ratio_first:.3f}x sync (goal <= 0.1)  "
            f"calls {ratio_calls:.3f}x per-chunk (goal <= 0.1)  429s {figures.rate_limited} "
            f"(goal 0)  {'PASS' if ok else 'FAIL'}"
        )


if __name__ == "__main__":
    anyio.run(main)
