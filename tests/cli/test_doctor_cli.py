"""`bridge doctor` as the real command: a FAIL line per failed check, the other checks still
run, and no token in its output even when the Telegram API is unreachable, silent or
refuses the token."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from bridge_telegram.testing import open_fake_bot_api

from tests.cli._kit import bridge, emulator, upstream_env

__all__ = ["emulator"]

TOKEN = "987654:Doctor-Secret-Token_x"


@contextmanager
def platform_api(kind: str, fake_url: str) -> Iterator[str]:
    """An api_url that is unreachable, accepts but never answers, or refuses the token."""
    if kind == "refused":
        yield fake_url
        return
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        if kind == "unreachable":
            listener.close()
        else:
            listener.listen(8)  # connections complete in the backlog; nothing ever answers
        yield url


@pytest.mark.parametrize("kind", ["unreachable", "silent", "refused"])
@pytest.mark.parametrize("level", ["WARNING", "debug"])
async def test_doctor_reports_telegram_failures_as_fail_lines(
    kind: str, level: str, emulator: Any, tmp_path: Path
) -> None:
    async with open_fake_bot_api() as fake:
        with platform_api(kind, fake.api_url) as api_url:
            config = tmp_path / "bridge.toml"
            config.write_text(
                f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n'
                f'[adapters.telegram]\napi_url = "{api_url}"\nrequest_timeout = 1.0\n'
            )
            env = upstream_env(emulator, TELEGRAM_BOT_TOKEN=TOKEN)
            result = await bridge("doctor", "--config", str(config), "--log-level", level, env=env)
    out = result.stdout.decode()
    assert result.returncode == 1, out + result.stderr.decode()
    assert "ok    upstream" in out and "ok    store" in out
    assert "FAIL  telegram getMe" in out
    if kind == "refused":
        assert "the bot token was refused" in out
    assert TOKEN.encode() not in result.stdout + result.stderr
    assert TOKEN.split(":")[1].encode() not in result.stdout + result.stderr
    if level == "WARNING":
        assert "Traceback" not in result.stderr.decode()


async def test_doctor_runs_every_check_when_one_fails(emulator: Any, tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[store]\nurl = "redis://:store-pass-55@127.0.0.1:1/0"\n'
        "[adapters.slack]\nbot_token = 'xoxb-1'\n"
    )
    result = await bridge("doctor", "--config", str(config), env=upstream_env(emulator))
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "ok    upstream" in out
    assert "FAIL  store" in out and "FAIL  adapters.slack" in out
    assert "failed" in out.splitlines()[-1]
    assert b"store-pass-55" not in result.stdout + result.stderr


async def test_doctor_reports_an_unreachable_slack_api_as_a_fail_line(
    emulator: Any, tmp_path: Path
) -> None:
    with platform_api("unreachable", "") as closed:
        config = tmp_path / "bridge.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n'
            f'[adapters.slack]\nmode = "socket"\napi_url = "{closed}/api/"\n'
        )
        env = upstream_env(
            emulator, SLACK_BOT_TOKEN="xoxb-doctor-9", SLACK_APP_TOKEN="xapp-doctor-9"
        )
        result = await bridge("doctor", "--config", str(config), env=env)
    out = result.stdout.decode()
    assert result.returncode == 1
    assert "ok    store" in out and "FAIL  slack auth.test" in out
    assert b"xoxb-doctor-9" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr.decode()
