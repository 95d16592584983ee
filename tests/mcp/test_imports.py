"""`bridge mcp` loads only what it uses (no chat platform SDKs, metrics or telemetry stacks,
nor parts of the bridge it has no use for), and serves with the garbage collector on and
what start-up loaded frozen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from bridge.emulator import Emulator
from tests.mcp.conftest import stdio_parameters

pytestmark = pytest.mark.anyio

_FORBIDDEN = ("slack", "telegram", "prometheus", "bridge_slack", "bridge_telegram")
# What `bridge mcp` over stdio has no use for: other commands (`bridge chat`, `doctor`,
# `mcp install`), the chat flow of chat surfaces, rendering and Markdown, other stores'
# drivers, the emulator, the test kit, an HTTP server, and what only errors need.
_UNUSED = (
    "bridge._chat",
    "bridge.doctor",
    "bridge_mcp._install",
    "bridge.chat._flow",
    "bridge.chat._commands",
    "bridge.chat._messages",
    "bridge.chat._policy",
    "bridge.chat._incoming",
    "bridge.chat._cache",
    "bridge.render",
    "markdown_it",
    "bridge.stores.redis",
    "bridge.stores.postgres",
    "redis",
    "psycopg",
    "bridge.metrics",
    "bridge.emulator",
    "bridge.testing",
    "jsonschema",
    "uvicorn.protocols",  # the HTTP server's, which stdio does not run
    "difflib",  # "did you mean" in errors
    "tomllib",  # read only from a config file (none here)
)

_DRIVER = """
import atexit, gc, json, sys
gc.disable()  # as `python -m bridge` and the `bridge` command start
seen = {}
def record():
    seen.update(gc=gc.isenabled(), frozen=gc.get_freeze_count(), modules=sorted(sys.modules))
    open(sys.argv[1], "w").write(json.dumps(seen))
atexit.register(record)
from bridge.cli import main
sys.exit(main(["mcp"]))
"""


def _bare_sdk_modules() -> set[str]:
    """What importing the SDK's own server (an MCPServer hello world) loads."""
    code = "import json, sys, mcp.server.mcpserver, mcp.server.stdio; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    return set(json.loads(done.stdout))


async def test_bridge_mcp_over_stdio_imports_no_platform_metrics_or_telemetry_modules(
    emulator: Emulator, tmp_path: Path
) -> None:
    out = tmp_path / "modules.json"
    base = stdio_parameters(emulator)
    parameters = StdioServerParameters(
        command=sys.executable, args=["-c", _DRIVER, str(out)], env=base.env
    )
    async with Client(parameters, mode="legacy") as client:
        await client.list_tools()
        answered = await client.call_tool("echo", {"message": "light"})
    assert answered.is_error is False
    seen = json.loads(out.read_text())
    loaded = set(seen["modules"])
    assert "bridge_mcp" in loaded
    assert [m for m in loaded if m.split(".")[0].lower().startswith(_FORBIDDEN)] == []
    assert sorted(m for m in loaded if m.startswith(_UNUSED)) == []
    telemetry = {m for m in loaded if m.split(".")[0] == "opentelemetry"}
    assert telemetry - _bare_sdk_modules() == set()
    # The collector is on while it serves, and what start-up loaded is out of its walks.
    assert seen["gc"] is True
    assert seen["frozen"] > 50_000
