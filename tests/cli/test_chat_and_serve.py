"""`bridge chat` (agent and thread checks, Ctrl-C) and `bridge serve`'s start-up summary,
run as the real command."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from tests.cli._kit import bridge, clean_env, emulator, one_line_error, read_until, upstream_env

__all__ = ["emulator"]


async def test_an_unknown_agent_lists_close_matches_and_points_at_agents(
    emulator: Any, tmp_path: Path
) -> None:
    result = await bridge("chat", "--agent", "wrtier", "hi", env=upstream_env(emulator))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "'wrtier'" in line and "writer" in line and "bridge agents" in line


async def test_an_unknown_thread_is_refused_before_anything_is_sent(emulator: Any) -> None:
    result = await bridge(
        "chat", "--agent", "echo", "--thread", "no-such-thread", "hi", env=upstream_env(emulator)
    )
    assert result.returncode == 2
    assert "no thread 'no-such-thread'" in one_line_error(result)
    assert emulator.invokes() == []


async def open_chat(tmp_path: Path, *args: str) -> Any:
    return await anyio.open_process(
        [sys.executable, "-m", "bridge", "chat", "--agent", "slow", *args],
        env=clean_env(),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_ctrl_c_stops_the_answer_and_still_prints_the_thread(tmp_path: Path) -> None:
    async with await open_chat(tmp_path, "take your time") as process:
        seen = bytearray()
        await read_until(process.stderr, rb"Using slow_tool", seen)
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            code = await process.wait()
        seen += b"".join([chunk async for chunk in process.stderr])
    assert code == 130
    assert b"stopped" in seen
    assert b"Traceback" not in seen
    assert seen.decode().strip().splitlines()[-1].startswith("thread: ")


async def test_interactive_ctrl_c_stops_the_answer_and_a_second_one_exits(
    tmp_path: Path,
) -> None:
    async with await open_chat(tmp_path) as process:
        seen = bytearray()
        await process.stdin.send(b"take your time\n")
        await read_until(process.stderr, rb"Using slow_tool", seen)
        process.send_signal(signal.SIGINT)
        found = await read_until(process.stderr, rb"thread: (\S+)\n(?:.*\n)?you> ", seen)
        assert process.returncode is None  # still chatting after the first Ctrl-C
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            code = await process.wait()
    assert code == 130
    assert b"stopped" in seen and found.group(1)


async def test_serve_prints_a_start_up_summary(tmp_path: Path) -> None:
    memory = tmp_path / "memory.toml"
    memory.write_text('[http]\nport = 0\n[store]\nurl = "memory://"\n[adapters.mcp]\n')
    process = await anyio.open_process(
        [sys.executable, "-m", "bridge", "serve", "--config", str(memory)],
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    async with process:
        seen = bytearray()
        await read_until(process.stderr, rb"bridge: metrics: \S+", seen)
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0
    summary = [line for line in seen.decode().splitlines() if line.startswith("bridge: ")]
    text = "\n".join(summary)
    assert "adapters: mcp" in text
    assert "platform: the embedded emulator" in text
    assert "mcp: MCP at http://127.0.0.1:" in text and "/mcp" in text
    assert "store: memory://" in text
    assert "/metrics" in text
