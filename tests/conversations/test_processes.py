"""Several bridge processes on one store: no overlapping turns, exactly-once answers,
recovery after SIGKILL, continuation after restart (SQLite, Redis and Postgres)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from anyio.streams.text import TextReceiveStream

from bridge.testing import open_emulator

WORKER = str(Path(__file__).with_name("_worker.py"))
KEY = "slack|T1/C1|1700000000.000100"


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    async with open_emulator(api_key="test-key", keepalive_interval=0.05, slow_silence=1.5) as emu:
        yield emu


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    if request.param == "postgres":
        postgres: str = request.getfixturevalue("postgres_url")
        return f"{postgres}?schema=test_{uuid.uuid4().hex}"
    url: str = request.getfixturevalue("redis_url")
    return f"{url}?prefix=test-{tmp_path.name}:"


async def start(emulator: Any, store_url: str, replica: str, *args: str) -> Process:
    return await anyio.open_process(
        [sys.executable, WORKER, emulator.base_url, store_url, replica, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def facts(process: Process) -> AsyncIterator[dict[str, Any]]:
    assert process.stdout is not None
    buffer = ""
    async for text in TextReceiveStream(process.stdout):
        buffer += text
        while "\n" in buffer:
            line, buffer = buffer.split("\n", 1)
            yield json.loads(line)


async def finish(process: Process) -> list[dict[str, Any]]:
    seen = [fact async for fact in facts(process)]
    code = await process.wait()
    if code != 0:
        assert process.stderr is not None
        errors = (await process.stderr.receive()).decode(errors="replace")
        raise AssertionError(f"worker exited {code}: {errors}")
    return seen


async def test_two_processes_on_one_thread_never_overlap_and_answer_each_message_once(
    emulator: Any, store_url: str
) -> None:
    texts = [
        f"{name} chars=120 chunks=6 seconds=0.15" for name in ("a1", "a2", "a3", "b1", "b2", "b3")
    ]
    results: list[list[dict[str, Any]]] = []

    async def worker(replica: str, mine: list[str]) -> None:
        process = await start(emulator, store_url, replica, "say", KEY, "writer", *mine)
        async with process:
            results.append(await finish(process))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(worker, "replica-a", texts[:3])
            group.start_soon(worker, "replica-b", texts[3:])
    answered = [fact["answered"] for result in results for fact in result if "answered" in fact]
    assert sorted(answered) == sorted(texts)
    threads = {fact["task"] for result in results for fact in result if "answered" in fact}
    assert len(threads) == 1
    thread = threads.pop()
    assert emulator.max_concurrent_turns(thread) == 1
    assert emulator.conflicts == []
    assert len(emulator.invokes()) == len(texts)


async def test_a_turn_killed_mid_way_is_delivered_once_after_restart(
    emulator: Any, store_url: str
) -> None:
    with anyio.fail_after(60):
        doomed = await start(emulator, store_url, "doomed", "say", KEY, "slow", "long job")
        async with doomed:
            async for fact in facts(doomed):
                if "created" in fact:
                    task_id = fact["created"]
                    break
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
        rescuer = await start(emulator, store_url, "rescuer", "recover", "slack")
        async with rescuer:
            rescued = await finish(rescuer)
        late = await start(emulator, store_url, "late", "recover-once", "slack")
        async with late:
            again = await finish(late)
    deliveries = [fact for fact in rescued if "delivered" in fact]
    assert len(deliveries) == 1
    assert deliveries[0]["where"] == "long job"
    assert deliveries[0]["result"]
    assert emulator.tasks[task_id].status == "completed"
    assert again == [{"recovered": 0}]
    assert len(emulator.invokes()) == 1


async def test_a_thread_continues_the_same_task_after_a_restart(
    emulator: Any, store_url: str
) -> None:
    with anyio.fail_after(30):
        first = await start(emulator, store_url, "before", "say", KEY, "echo", "before restart")
        async with first:
            before = await finish(first)
        second = await start(emulator, store_url, "after", "say", KEY, "echo", "after restart")
        async with second:
            after = await finish(second)
    task_before = next(fact["task"] for fact in before if "answered" in fact)
    task_after = next(fact["task"] for fact in after if "answered" in fact)
    assert task_before == task_after
    assert emulator.invokes()[-1].body["id"] == task_before
