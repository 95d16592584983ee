"""The line chat (tests/chat/line_surface.py), built only on the public API, over a real TCP
socket: streaming, stop, allow-lists, per-user limits, recovery after a kill, the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from bridge import Runtime, Settings, load_settings, serve
from bridge.emulator import Emulator
from bridge.testing import check_adapter_contract, open_emulator

from .line_surface import LineAdapter, LineConfig

pytestmark = pytest.mark.anyio

LONG = "chunks=30 seconds=3 chars=900"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with open_emulator(api_key="k", keepalive_interval=0.05) as emu:
        yield emu


def settings_for(emulator: Emulator, store: str = "memory://") -> Settings:
    return load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": "k", "idle_timeout": 10.0},
            "store": {"url": store},
            "http": {"host": "127.0.0.1", "port": 0},
            "conversations": {"lock_lease": 1.0, "recovery_interval": 0.2, "replica_file": ""},
        },
        environ={},
    )


class LineClient:
    """One user's terminal on the line chat."""

    def __init__(self, stream: anyio.abc.SocketStream, user: str) -> None:
        self.stream, self.user = stream, user
        self.lines = BufferedByteReceiveStream(stream)
        self.seen: list[tuple[str, str]] = []

    async def say(self, text: str) -> None:
        await self.stream.send(f"{self.user} {text}\n".encode())

    async def until(self, kind: str, count: int = 1) -> list[tuple[str, str]]:
        """Read lines until `count` of `kind` arrived; returns every line read so far."""
        with anyio.fail_after(30):
            while sum(1 for seen, _ in self.seen if seen == kind) < count:
                raw = (await self.lines.receive_until(b"\n", 65_536)).decode()
                seen, _, text = raw.partition(" ")
                self.seen.append((seen, text.replace("\\n", "\n")))
        return self.seen

    def texts(self, kind: str) -> list[str]:
        return [text for seen, text in self.seen if seen == kind]


@asynccontextmanager
async def connect(adapter: LineAdapter, user: str) -> AsyncIterator[LineClient]:
    async with await anyio.connect_tcp("127.0.0.1", adapter.port) as stream:
        yield LineClient(stream, user)


@asynccontextmanager
async def running(settings: Settings, adapter: LineAdapter) -> AsyncIterator[Runtime]:
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(
            lambda task_status: _serve(settings, adapter, task_status)
        )
        yield runtime
        group.cancel_scope.cancel()


async def _serve(settings: Settings, adapter: LineAdapter, task_status: Any) -> None:
    await serve(settings, adapters=[adapter], task_status=task_status)


def line_adapter(**config: Any) -> LineAdapter:
    return LineAdapter(LineConfig.model_validate(config))


async def test_the_answer_streams_line_by_line_and_ends_with_the_final_answer(
    emulator: Emulator,
) -> None:
    adapter = line_adapter(agent="writer")
    async with running(settings_for(emulator), adapter), connect(adapter, "alice") as alice:
        await alice.say("chunks=5 seconds=0.2 chars=200")
        await alice.until("answer")
    [task] = emulator.tasks.values()
    assert alice.texts("answer") == [task.to_json()["result"]]
    assert len(alice.texts("text")) > 1
    assert "".join(alice.texts("text")) == alice.texts("answer")[0]


async def test_only_who_asked_or_an_admin_may_stop_the_running_turn(emulator: Emulator) -> None:
    adapter = line_adapter(agent="writer", admins=["root"])
    async with (
        running(settings_for(emulator), adapter),
        connect(adapter, "alice") as alice,
        connect(adapter, "bob") as bob,
    ):
        await alice.say(LONG)
        await alice.until("text")
        await bob.say("/stop")
        await bob.until("refused")
        await alice.say("/stop")
        await alice.until("failed")
    assert bob.texts("refused") == ["only who asked (or an admin) may stop it"]
    assert alice.texts("failed") == ["⏹ Stopped."]
    [task] = emulator.tasks.values()
    assert task.to_json()["status"] == "stopped"


async def test_users_outside_the_allow_list_are_refused_before_any_work(emulator: Emulator) -> None:
    adapter = line_adapter(allowed_users=["alice"])
    async with (
        running(settings_for(emulator), adapter),
        connect(adapter, "mallory") as mallory,
        connect(adapter, "alice") as alice,
    ):
        await mallory.say("hello")
        await mallory.until("refused")
        await alice.say("hello")
        await alice.until("answer")
    assert mallory.texts("refused") == ["you may not talk to agents here"]
    assert len(emulator.invokes()) == 1


async def test_a_user_over_their_limit_is_refused_and_others_are_not(emulator: Emulator) -> None:
    adapter = line_adapter(user_rate_limit=2, user_rate_window=3600)
    async with (
        running(settings_for(emulator), adapter),
        connect(adapter, "alice") as alice,
        connect(adapter, "bob") as bob,
    ):
        for n in range(3):
            await alice.say(f"message {n}")
        await alice.until("refused")
        await alice.until("answer", 2)
        await bob.say("my turn")
        await bob.until("answer")
    assert alice.texts("refused") == ["too many messages; wait a moment"]
    assert len(emulator.invokes()) == 3


async def test_a_second_bridge_on_the_store_delivers_the_turn_a_killed_one_left(
    emulator: Emulator, tmp_path: Path
) -> None:
    settings = settings_for(emulator, f"sqlite:///{tmp_path / 'state.db'}")
    first = line_adapter(agent="writer")
    async with running(settings, first), connect(first, "alice") as alice:
        await alice.say(LONG)
        await alice.until("text")
    # killed mid-answer (cancelled, no drain); the agent goes on upstream
    [task] = emulator.tasks.values()
    with anyio.fail_after(30):
        await emulator.wait_for_status(task.id, "completed")
    second = line_adapter(agent="writer")
    async with running(settings, second), connect(second, "alice") as alice:
        await alice.say("/hello")
        await alice.until("answer")
    assert alice.texts("answer") == [emulator.tasks[task.id].to_json()["result"]]
    assert len(emulator.invokes()) == 1


async def test_the_line_chat_keeps_the_adapter_contract(emulator: Emulator) -> None:
    adapter = line_adapter()
    failures: list[str] = []

    async def trigger(runtime: Runtime) -> None:
        async with connect(adapter, "alice") as alice:
            await alice.say("are you up?")
            await alice.until("failed")
        failures.extend(alice.texts("failed"))

    await check_adapter_contract(
        adapter, settings_for(emulator), emulator=emulator, trigger=trigger
    )
    assert failures == ["⚠️ The agent platform did not answer. Please try again in a moment."]
