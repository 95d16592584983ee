"""Each request of a conversation goes to the other replica of the one before (two
runtimes on one Redis or Postgres store): users see exactly what one replica shows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from bridge_slack.testing import open_fake_slack
from bridge_telegram.testing import open_fake_bot_api

from bridge.emulator import Emulator
from bridge.runtime import Runtime
from bridge.testing import open_emulator
from tests.chaos._kit import bridge_settings, running
from tests.replicas._surfaces import SURFACES, TURNS, Platforms

FILE_TOO_LARGE = "413 b'file not available (too_large)'"
CONVERSATIONS = ("slack", "telegram", "mcp")
"""The surfaces whose every request is a message answered in one continued thread."""
HANDLE_SECRET = "handle-secret-77aa01"

Transcript = dict[str, tuple[list[str], list[list[str]]]]
"""Per surface: the answers the user saw, and the messages of each upstream thread."""


async def _converse(
    emulator: Emulator, platforms: Platforms, replicas: list[Runtime]
) -> Transcript:
    """Every surface's conversation, request `i` to `replicas[i % len(replicas)]`."""
    answers: dict[str, list[str]] = {}

    async def converse(name: str) -> None:
        surface = SURFACES[name](platforms)
        answers[name] = [
            await surface.send(replicas[index % len(replicas)], index)
            for index in range(surface.requests)
        ]

    async with anyio.create_task_group() as group:
        for name in SURFACES:
            group.start_soon(converse, name)
    transcript: Transcript = {}
    for name, said in answers.items():
        threads = [
            [str(turn.input.get("text")) for turn in task.turns]
            for task in emulator.tasks.values()
            if str(task.turns[0].input.get("text")).startswith(f"{name} turn")
        ]
        transcript[name] = (said, threads)
    return transcript


async def _run(store: str, replica_count: int) -> tuple[Transcript, int]:
    async with (
        open_emulator() as emulator,
        open_fake_slack() as slack,
        open_fake_bot_api() as telegram,
        httpx.AsyncClient(timeout=30) as http,
    ):
        platforms = Platforms(slack, telegram, http, emulator)
        settings = bridge_settings(
            emulator, store=store, conversations={"handle_secret": HANDLE_SECRET}
        )
        async with running(settings, platforms.adapters()) as a:
            if replica_count == 1:
                transcript = await _converse(emulator, platforms, [a])
            else:
                async with running(settings, platforms.adapters()) as b:
                    assert a.conversations.replica_id != b.conversations.replica_id
                    transcript = await _converse(emulator, platforms, [a, b])
        return transcript, len(emulator.tasks)


@pytest.fixture(scope="module")
async def one_replica() -> AsyncIterator[tuple[Transcript, int]]:
    yield await _run("memory://", 1)


async def test_one_replica_answers_each_surface_in_one_continued_thread(
    one_replica: tuple[Transcript, int],
) -> None:
    transcript, _ = one_replica
    for name in CONVERSATIONS:
        answers, threads = transcript[name]
        said = [f"{name} turn {index}" for index in range(TURNS)]
        assert answers == said
        assert threads == [said], name


async def test_one_replica_serves_shared_files_under_the_cap_and_follows_runs(
    one_replica: tuple[Transcript, int],
) -> None:
    transcript, tasks = one_replica
    files, file_threads = transcript["files"]
    assert files == ["files turn 0", "200 b'replica file bytes'", "files turn 2", FILE_TOO_LARGE]
    assert file_threads == [["files turn 0"], ["files turn 2"]]
    runs, run_threads = transcript["runs"]
    assert runs == ["working: ", "completed: runs turn 0", "working: ", "stopped: "]
    assert run_threads == [["runs turn 0"], ["runs turn 2"]]
    assert tasks == len(CONVERSATIONS) + 4


async def test_alternating_replicas_show_what_one_replica_shows(
    shared_store: str, one_replica: tuple[Transcript, int]
) -> None:
    with anyio.fail_after(120):
        alternating = await _run(shared_store, 2)
    assert alternating == one_replica
