"""Every surface shows the same final answer, failure wording and approval text for the same
upstream task: Slack (fake Web API), Telegram (fake Bot API), MCP (the SDK client), the CLI
(`bridge chat` as a subprocess) and A2A (the a2a-sdk client), all against one emulator."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio
import pytest
from a2a.types.a2a_pb2 import TaskState
from bridge_slack.testing import FakeSlack, open_fake_slack
from bridge_telegram.testing import FakeBotAPI, FakeUser, open_fake_bot_api
from mcp import Client

from bridge.emulator import AgentSpec, Emulator, TurnContext
from bridge.testing import open_emulator
from tests.a2a import conftest as a2a
from tests.cli._kit import clean_env, read_until
from tests.mcp import conftest as mcp
from tests.slack import conftest as slack
from tests.telegram.conftest import running_bridge

pytestmark = pytest.mark.anyio

API_KEY = "test-key"
ALICE = FakeUser(42, "Alice", "alice")


async def _stops(ctx: TurnContext) -> None:
    ctx.think("Plan", "Stop before answering.")
    ctx.fail("Stopped by its owner.", "stopped")


@dataclass(frozen=True)
class Case:
    agent: str
    message: str
    shown: str
    """What the user must read, in the chat layer's wording."""
    then: str | None = None
    """What follows once a paused turn is approved."""


CASES = {
    "answer": Case("echo", "same answer everywhere", "same answer everywhere"),
    "failure": Case(
        "failing",
        "raise an error",
        "⚠️ The agent could not finish (error): "
        "Scripted runtime error: the agent crashed while working.",
    ),
    "stopped": Case("stopper", "stop now", "⏹ Stopped."),
    "approval": Case(
        "approver",
        "delete the logs",
        "Approval required\nThe agent wants to act on: delete the logs",
        then="Approved. Done: delete the logs",
    ),
}


def plain(text: str) -> str:
    """Text as read: markup (Slack `*bold*`, Telegram HTML) and line breaks aside."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return " ".join(text.replace("*", "").split())


def shows(seen: str, wanted: str) -> bool:
    return plain(wanted) in plain(seen)


def resume_paused(emulator: Emulator) -> bool:
    paused = [task for task in emulator.tasks.values() if task.status == "paused"]
    for task in paused:
        emulator.resume(task.id, approved=True)
    return bool(paused)


Surface = Callable[[Emulator, Case], Awaitable[str]]


def _until_shown(emulator: Emulator, case: Case, seen: Callable[[], str]) -> Callable[[], bool]:
    """A predicate for a fake's `wait_for`: the case's text is shown (and, for an approval,
    the paused turn is resumed and its answer shown)."""
    resumed = False

    def done() -> bool:
        nonlocal resumed
        text = seen()
        if not shows(text, case.shown):
            return False
        if case.then is None:
            return True
        resumed = resumed or resume_paused(emulator)
        return shows(text, case.then)

    return done


async def on_slack(emulator: Emulator, case: Case) -> str:
    async with open_fake_slack() as fake, slack.serving(emulator, fake) as bridge:
        sent = await bridge.mention(f"agent:{case.agent} {case.message}")

        def seen() -> str:
            return "\n".join(m.visible_text for m in fake.replies("C1", sent["ts"]))

        return await _wait(fake, _until_shown(emulator, case, seen), seen)


async def on_telegram(emulator: Emulator, case: Case) -> str:
    async with (
        open_fake_bot_api() as fake,
        running_bridge(emulator, fake, default_agent=case.agent),
    ):
        fake.queue(ALICE.says(fake, ALICE.id, case.message))

        def seen() -> str:
            return "\n".join(m.text for m in fake.sent(ALICE.id))

        return await _wait(fake, _until_shown(emulator, case, seen), seen)


async def _wait(
    fake: FakeSlack | FakeBotAPI, done: Callable[[], bool], seen: Callable[[], str]
) -> str:
    with anyio.move_on_after(20):
        await fake.wait_for(done)
    return seen()


async def on_mcp(emulator: Emulator, case: Case) -> str:
    async with mcp.serving(emulator) as bridge, Client(bridge.url, mode="legacy") as client:
        result = await client.call_tool(case.agent, {"message": case.message})
        state = result.structured_content or {}
        seen = [str(state.get(key) or "") for key in ("answer", "error", "note")]
        if case.then is not None and state.get("run"):
            resume_paused(emulator)  # the call returned at the pause
            later = await client.call_tool("get_run", {"run": state["run"], "wait": 20})
            seen.append(str((later.structured_content or {}).get("answer") or ""))
    return "\n".join(seen)


async def on_cli(emulator: Emulator, case: Case) -> str:
    env = clean_env(BRIDGE_UPSTREAM__BASE_URL=emulator.base_url, XPANDER_API_KEY=API_KEY)
    command = [sys.executable, "-m", "bridge", "chat", "--agent", case.agent, case.message]
    async with await anyio.open_process(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        err = bytearray()
        if case.then is not None:
            await read_until(process.stderr, re.escape(case.shown.splitlines()[-1].encode()), err)
            resume_paused(emulator)
        with anyio.fail_after(30):
            out = b"".join([chunk async for chunk in process.stdout])
            err += b"".join([chunk async for chunk in process.stderr])
            await process.wait()
    return out.decode() + "\n" + err.decode()


async def on_a2a(emulator: Emulator, case: Case) -> str:
    async with (
        a2a.serving(emulator, tokens=a2a.TOKENS) as bridge,
        a2a.a2a_client(bridge.agent_url(case.agent), streaming=False) as client,
    ):
        task = await a2a.final_task(client, a2a.user_message(case.message))
        seen = [part.text for part in task.status.message.parts] + [a2a.answer_of(task)]
        if case.then is not None and task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            resume_paused(emulator)
            with anyio.fail_after(20):
                await emulator.wait_for_status(next(iter(emulator.tasks)), "completed")
            follow = a2a.user_message("approved", task_id=task.id, context_id=task.context_id)
            seen.append(a2a.answer_of(await a2a.final_task(client, follow)))
    return "\n".join(seen)


SURFACES: dict[str, Surface] = {
    "slack": on_slack,
    "telegram": on_telegram,
    "mcp": on_mcp,
    "cli": on_cli,
    "a2a": on_a2a,
}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    stopper = AgentSpec("stopper", "Stops its turn before answering.", _stops)
    async with open_emulator(
        api_key=API_KEY, keepalive_interval=0.05, extra_agents=[stopper]
    ) as emu:
        yield emu


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("surface", list(SURFACES))
async def test_the_same_task_reads_the_same_on_every_surface(
    emulator: Emulator, surface: str, case: str
) -> None:
    wanted = CASES[case]
    seen = await SURFACES[surface](emulator, wanted)
    assert shows(seen, wanted.shown), f"{surface} showed:\n{seen}"
    if wanted.then is not None:
        assert shows(seen, wanted.then), f"{surface} showed:\n{seen}"
