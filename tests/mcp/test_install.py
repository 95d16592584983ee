"""`bridge mcp install CLIENT`: run as the real command against a temporary home directory,
then the configured command is started by the official MCP client and answers."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from bridge.emulator import Emulator

LOCATIONS = {
    "claude-code": (".claude.json", "mcpServers"),
    "claude-desktop": (".config/Claude/claude_desktop_config.json", "mcpServers"),
    "cursor": (".cursor/mcp.json", "mcpServers"),
    "vscode": (".config/Code/User/mcp.json", "servers"),
}


def home_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "XPANDER_"))}
    env.pop("XDG_CONFIG_HOME", None)
    return {**env, "HOME": str(home)}


async def run_bridge(*args: str, home: Path) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [sys.executable, "-m", "bridge", *args], env=home_env(home), check=False, cwd=home
        )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.parametrize("client", sorted(LOCATIONS))
async def test_install_merges_the_entry_and_the_client_can_start_it(
    client: str, emulator: Emulator, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    relative, key = LOCATIONS[client]
    target = home / relative
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"theme": "dark", key: {"other": {"command": "other-server"}}}))
    config = tmp_path / "bridge.toml"
    config.write_text(
        f'[upstream]\nbase_url = "{emulator.base_url}"\napi_key = "{emulator.api_key}"\n'
        '[store]\nurl = "memory://"\n'
    )
    code, _, err = await run_bridge("mcp", "install", client, "--config", str(config), home=home)
    assert code == 0, err
    written = json.loads(target.read_text())
    assert written["theme"] == "dark" and written[key]["other"] == {"command": "other-server"}
    entry = written[key]["agents"]
    assert entry["env"] == {"BRIDGE_CONFIG": str(config)}
    assert emulator.api_key not in target.read_text()
    if client in ("claude-code", "vscode"):
        assert entry["type"] == "stdio"
    parameters = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env={**home_env(home), **entry["env"]},
        cwd=str(tmp_path),
    )
    async with Client(parameters, mode="legacy") as mcp:
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        answer = await mcp.call_tool("echo", {"message": "installed"})
    assert "echo" in names
    assert answer.is_error is False
    assert emulator.invokes(agent="echo")[-1].json["input"]["text"] == "installed"


async def test_print_shows_the_entry_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code, out, err = await run_bridge("mcp", "install", "cursor", "--print", home=home)
    assert code == 0, err
    shown = json.loads(out)
    assert set(shown["mcpServers"]["agents"]) == {"command", "args", "env"}
    assert shown["mcpServers"]["agents"]["args"][-1] == "mcp"
    assert list(home.iterdir()) == []


async def test_install_leaves_a_broken_file_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".cursor").mkdir(parents=True)
    broken = home / ".cursor" / "mcp.json"
    broken.write_text("{not json")
    code, _, err = await run_bridge("mcp", "install", "cursor", home=home)
    assert code == 2
    assert "not valid JSON" in err and str(broken) in err and "Traceback" not in err
    assert broken.read_text() == "{not json"
