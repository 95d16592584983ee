"""Every failure of the `bridge` command is one line naming the problem, the key and where
it came from; exit 2 for configuration, 1 at run time; the traceback only at debug level."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.cli._kit import bridge, clean_env, emulator, one_line_error, upstream_env

__all__ = ["emulator"]

SLACK_CASES = {
    "no bot token": ('mode = "socket"\napp_token = "xapp-1"\n', "adapters.slack.bot_token"),
    "socket mode without app token": (
        'mode = "socket"\nbot_token = "xoxb-1"\n',
        "adapters.slack.app_token",
    ),
    "HTTP mode without signing secret": (
        'mode = "http"\nbot_token = "xoxb-1"\n',
        "adapters.slack.signing_secret",
    ),
}


@pytest.mark.parametrize("case", sorted(SLACK_CASES))
@pytest.mark.parametrize("command", ["serve", "check-config"])
async def test_slack_requirements_are_one_line_with_the_key_and_file(
    case: str, command: str, emulator: Any, tmp_path: Path
) -> None:
    table, key = SLACK_CASES[case]
    config = tmp_path / "bridge.toml"
    config.write_text(f"[http]\nport = 0\n[adapters.slack]\n{table}")
    result = await bridge(command, "--config", str(config), env=upstream_env(emulator))
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("configuration error:")
    assert f"'{key}'" in line and str(config) in line


async def test_an_unknown_log_level_names_the_flag() -> None:
    result = await bridge("doctor", "--log-level", "LOUD")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "'log.level'" in line and "--log-level" in line and "LOUD" in line


async def test_an_unknown_log_level_from_the_environment_names_the_variable() -> None:
    result = await bridge("check-config", env=clean_env(BRIDGE_LOG__LEVEL="loud"))
    assert result.returncode == 2
    assert "environment variable BRIDGE_LOG__LEVEL" in one_line_error(result)


async def test_a_port_in_use_is_a_runtime_failure_naming_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "bridge.toml"
        config.write_text(f'[http]\nport = {port}\n[store]\nurl = "memory://"\n')
        result = await bridge("serve", "--config", str(config), "--log-level", "WARNING")
        debug = await bridge("serve", "--config", str(config), "--log-level", "debug")
    assert result.returncode == 1
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "'http.port'" in line
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr.decode()


async def test_mcp_beyond_loopback_without_tokens_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[http]\nhost = "0.0.0.0"\nport = 0\n[adapters.mcp]\n')
    for command in ("serve", "check-config"):
        result = await bridge(command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2
        line = one_line_error(result)
        assert "'adapters.mcp.tokens'" in line and "0.0.0.0" in line


async def test_an_unsupported_store_scheme_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[store]\nurl = "mongodb://db/x"\n')
    for command in ("serve", "check-config"):
        result = await bridge(command, "--config", str(config), cwd=tmp_path)
        assert result.returncode == 2
        line = one_line_error(result)
        assert "'store.url'" in line and "mongodb" in line


@pytest.mark.parametrize(
    ("table", "wrong", "right"),
    [
        ("upstream", "base_ulr", "base_url"),
        ("adapters.mcp", "refresh_intervall", "refresh_interval"),
        ("conversations", "drain_timout", "drain_timeout"),
    ],
)
async def test_an_unknown_key_suggests_the_closest(
    table: str, wrong: str, right: str, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f"[{table}]\n{wrong} = 1\n")
    result = await bridge("check-config", "--config", str(config))
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"'{table}.{wrong}'" in line and f"did you mean '{right}'" in line


async def test_an_unknown_variable_suggests_the_closest() -> None:
    result = await bridge("check-config", env=clean_env(BRIDGE_CONVERSATIONS__POLICI="queue"))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "did you mean 'policy'" in line and "BRIDGE_CONVERSATIONS__POLICI" in line


async def test_global_flags_work_after_the_command(emulator: Any, tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/s.db"\n')
    env = clean_env()
    checked = await bridge("check-config", "--config", str(config), env=env)
    assert checked.returncode == 0, checked.stderr
    assert f"config file: {config}" in checked.stdout.decode()
    doctor = await bridge(
        "doctor",
        "--config",
        str(config),
        "--base-url",
        emulator.base_url,
        "--api-key",
        "cli-key",
        env=env,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    chat = await bridge(
        "chat", "--base-url", emulator.base_url, "--api-key", "cli-key", "--agent", "echo", "hi"
    )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.decode() == "hi\n"
    assert b"cli-key" not in chat.stdout + chat.stderr + doctor.stdout + doctor.stderr


async def test_base_url_without_a_key_talks_to_that_url_and_says_it_needs_one(
    emulator: Any, tmp_path: Path
) -> None:
    result = await bridge(
        "chat", "--base-url", emulator.base_url, "--agent", "echo", "hi", cwd=tmp_path
    )
    assert result.returncode == 1
    line = one_line_error(result)
    assert emulator.base_url in line and "needs an API key" in line
    assert result.stdout == b""
    assert emulator.requests, "the command never reached the given URL"
    assert not (tmp_path / ".bridge").exists()  # no embedded emulator ran


async def test_cannot_connect_names_the_url() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    result = await bridge("agents", "--base-url", url, "--api-key", "k")
    assert result.returncode == 1
    assert f"cannot connect to the platform at {url}" in one_line_error(result)


async def test_the_emulator_help_states_its_key_rule() -> None:
    result = await bridge("emulator", "--help")
    text = " ".join(result.stdout.decode().split())
    assert "the x-api-key the emulator requires; any other key gets 401 (default: dev-key)" in text


async def test_the_slack_manifest_comes_before_the_tokens(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[http]\npublic_url = "https://bridge.example.com"\n[adapters.slack]\n')
    manifest = await bridge("slack", "manifest", "--config", str(config))
    assert manifest.returncode == 0, manifest.stderr
    assert b"https://bridge.example.com/slack/events" in manifest.stdout
    refused = await bridge("check-config", "--config", str(config))
    assert refused.returncode == 2
    assert "'adapters.slack.bot_token'" in one_line_error(refused)
