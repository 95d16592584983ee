"""Every key `bridge check-config` prints is documented: in `config.example.toml` and, with
its environment form, in `docs/configuration.md`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio

from tests.cli._kit import clean_env

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r"^\[([^\]]+)\]")
KEY = re.compile(r"^([a-z_][a-z0-9_]*)\s*=")


def normalize(path: str) -> str:
    """`adapters.telegram.routes."-100…".agent` and `routes.42.agent` -> `routes.*.agent`."""
    return re.sub(r'\.(?:"[^"]*"|-?\d+)(?=\.|$)', ".*", path)


def documented_in_example() -> set[str]:
    documented: set[str] = set()
    table = ""
    for raw in (ROOT / "config.example.toml").read_text().splitlines():
        line = raw.strip().removeprefix("#").strip()
        if header := HEADER.match(line):
            table = normalize(header.group(1))
        elif (key := KEY.match(line)) and table:
            documented.add(f"{table}.{key.group(1)}")
    return documented


async def printed_keys(tmp_path: Path) -> set[str]:
    config = tmp_path / "bridge.toml"
    config.write_text(
        '[store]\nurl = "memory://"\n'
        "[adapters.mcp]\n"
        '[adapters.slack]\nmode = "socket"\n'
        '[adapters.telegram]\n[adapters.telegram.routes."-1001"]\nagent = "writer"\n'
    )
    env = clean_env(
        XPANDER_API_KEY="k",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1",
        TELEGRAM_BOT_TOKEN="1:t",
    )
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [sys.executable, "-m", "bridge", "check-config", "--config", str(config)],
            env=env,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    return {normalize(line.split(" = ")[0]) for line in lines if " = " in line}


def env_form(key: str) -> str:
    return "BRIDGE_" + "__".join(
        "<CHAT_ID>" if part == "*" else part.upper() for part in key.split(".")
    )


async def test_the_example_documents_every_key_check_config_prints(tmp_path: Path) -> None:
    printed = await printed_keys(tmp_path)
    assert len(printed) > 80
    assert sorted(printed - documented_in_example()) == []


async def test_the_configuration_guide_gives_every_key_its_environment_form(
    tmp_path: Path,
) -> None:
    guide = (ROOT / "docs" / "configuration.md").read_text()
    missing = [key for key in sorted(await printed_keys(tmp_path)) if env_form(key) not in guide]
    assert missing == []
