"""The `bridge` command, run as a subprocess the way a user runs it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import httpx

from bridge.stores import PostgresStore
from tests.cli._kit import bridge, clean_env, emulator, upstream_env

__all__ = ["emulator"]  # the fixture


async def test_chat_without_a_key_answers_on_the_embedded_emulator(tmp_path: Path) -> None:
    result = await bridge("chat", "--agent", "echo", "hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == "hello\n"
    lines = result.stderr.decode().strip().splitlines()
    assert "embedded emulator" in lines[0]
    assert re.fullmatch(r"thread: \S+", lines[-1])
    thread = lines[-1].removeprefix("thread: ")
    again = await bridge("chat", "--agent", "echo", "--thread", thread, "again", cwd=tmp_path)
    assert again.stdout.decode() == "again\n"
    saved = json.loads((tmp_path / ".bridge" / "emulator.json").read_text())
    assert [len(t["turns"]) for t in saved["threads"] if t["id"] == thread] == [2]


async def test_chat_streams_to_stdout_and_thread_continues(emulator: Any, tmp_path: Path) -> None:
    first = await bridge(
        "chat", "--agent", "echo", "first", env=upstream_env(emulator), cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    thread = first.stderr.decode().strip().splitlines()[-1].removeprefix("thread: ")
    second = await bridge(
        "chat",
        "--agent",
        "echo",
        "--thread",
        thread,
        "second",
        env=upstream_env(emulator),
        cwd=tmp_path,
    )
    assert second.stdout.decode() == "second\n"
    assert emulator.invokes()[-1].body["id"] == thread
    assert len(emulator.tasks[thread].turns) == 2


async def test_chat_shows_steps_on_stderr_only(emulator: Any, tmp_path: Path) -> None:
    result = await bridge(
        "chat", "--agent", "researcher", "weather?", env=upstream_env(emulator), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "· Using" in result.stderr.decode()
    assert "· Using" not in result.stdout.decode()


async def test_interactive_chat_keeps_one_thread(emulator: Any, tmp_path: Path) -> None:
    result = await bridge(
        "chat", "--agent", "echo", env=upstream_env(emulator), cwd=tmp_path, stdin=b"one\ntwo\n"
    )
    assert result.stdout.decode() == "one\ntwo\n"
    threads = {r.body.get("id") for r in emulator.invokes()}
    assert len(threads) == 1 and None not in threads


async def test_a_failing_agent_exits_non_zero_with_a_clear_message(
    emulator: Any, tmp_path: Path
) -> None:
    result = await bridge(
        "chat", "--agent", "failing", "x", env=upstream_env(emulator), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "could not finish (failed)" in result.stderr.decode()


async def test_agents_prints_a_table(emulator: Any, tmp_path: Path) -> None:
    result = await bridge("agents", env=upstream_env(emulator), cwd=tmp_path)
    out = result.stdout.decode()
    assert out.splitlines()[0].startswith("NAME")
    assert "researcher" in out


async def test_bad_config_names_the_key_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[upstream]\nconnect_timeout = "soon"\n')
    result = await bridge("check-config", cwd=tmp_path)
    assert result.returncode == 2
    message = result.stderr.decode()
    assert "upstream.connect_timeout" in message and str(config.name) in message


async def test_unknown_key_in_an_adapter_table_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text("[adapters.mcp]\nno_such_key = 1\n")
    result = await bridge("--config", str(config), "check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert "adapters.mcp.no_such_key" in result.stderr.decode()


async def test_store_schema_prints_the_postgres_ddl_an_operator_can_apply(
    tmp_path: Path, postgres_url: str
) -> None:
    schema = f"ops_{uuid.uuid4().hex}"
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "{postgres_url}?schema={schema}"\n')
    result = await bridge("--config", str(config), "store", "schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(result.stdout.decode())
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    finally:
        await conn.close()
    assert {"threads", "turns", "locks", "secrets"} <= {row[0] for row in tables}
    async with PostgresStore(f"{postgres_url}?schema={schema}") as store:
        assert await store.mark_seen("ev", 60) is True


async def test_check_config_redacts_secrets(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[upstream]\napi_key = "super-secret-value"\n')
    result = await bridge("--config", str(config), "check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"super-secret-value" not in result.stdout + result.stderr
    assert b"api_key = ********" in result.stdout


async def test_serve_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[http]\nport = 0\n[store]\nurl = "memory://"\n')
    process = await anyio.open_process(
        [sys.executable, "-m", "bridge", "--config", str(config), "serve"],
        env=clean_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    async with process:
        assert process.stderr is not None
        log = b""
        with anyio.fail_after(30):
            while (found := re.search(rb"listening on (http://\S+)", log)) is None:
                log += await process.stderr.receive()
        base = found.group(1).decode()
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{base}/healthz")
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0


async def test_doctor_reports_each_check_and_fails_on_a_refused_key(
    emulator: Any, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n')
    good = await bridge("--config", str(config), "doctor", env=upstream_env(emulator), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    report = good.stdout.decode()
    assert "ok    upstream" in report and "ok    store" in report and "0 failed" in report
    bad_env = {**upstream_env(emulator), "XPANDER_API_KEY": "wrong"}
    bad = await bridge("--config", str(config), "doctor", env=bad_env, cwd=tmp_path)
    assert bad.returncode == 1
    assert "FAIL  upstream" in bad.stdout.decode() and "refused (401)" in bad.stdout.decode()


async def test_doctor_checks_a_postgres_store(
    emulator: Any, tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "{postgres_url}?schema=doctor_{uuid.uuid4().hex}"\n')
    good = await bridge("--config", str(config), "doctor", env=upstream_env(emulator), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok    store" in good.stdout.decode()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config.write_text(f'[store]\nurl = "postgresql://bridge@127.0.0.1:{closed}/postgres"\n')
    bad = await bridge("--config", str(config), "doctor", env=upstream_env(emulator), cwd=tmp_path)
    assert bad.returncode == 1
    assert "FAIL  store" in bad.stdout.decode()
