"""`import bridge` and `bridge chat` load no adapter or platform SDK they do not use, and no
module of the bridge or its adapters exceeds 600 lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from bridge.emulator import Emulator
from bridge.testing import open_emulator

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 600
_SDKS = ("slack_bolt", "slack_sdk", "telegram", "mcp", "a2a", "grpc", "prometheus_client")
_ADAPTERS = ("bridge_mcp", "bridge_slack", "bridge_telegram", "bridge_a2a")

_DRIVER = """
import atexit, json, sys
atexit.register(lambda: open(sys.argv[1], "w").write(json.dumps(sorted(sys.modules))))
from bridge.cli import main
sys.exit(main(["chat", "--agent", "echo", "hello"]))
"""


def _sdks(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in (*_SDKS, *_ADAPTERS))


def test_import_bridge_loads_only_the_package_and_its_version() -> None:
    code = "import json, sys, bridge; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    loaded = set(json.loads(done.stdout))
    assert sorted(m for m in loaded if m.split(".")[0] == "bridge") == ["bridge", "bridge._version"]
    assert _sdks(loaded) == []


def test_the_public_names_resolve_and_none_is_private() -> None:
    import bridge

    for name in bridge.__all__:
        assert getattr(bridge, name) is not None, name
        assert not name.startswith("_") or name == "__version__"


@pytest.mark.anyio
async def test_bridge_chat_loads_no_adapter_or_platform_sdk(tmp_path: Path) -> None:
    emulator: Emulator
    async with open_emulator(api_key="k") as emulator:
        out = tmp_path / "modules.json"
        env = {
            **os.environ,
            "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
            "BRIDGE_UPSTREAM__API_KEY": "k",
            "BRIDGE_STORE__URL": "memory://",
        }
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [sys.executable, "-c", _DRIVER, str(out)], env=env, cwd=tmp_path, check=False
            )
    assert done.returncode == 0, done.stderr.decode()
    assert b"hello" in done.stdout
    assert _sdks(set(json.loads(out.read_text()))) == []


def test_production_code_never_imports_the_test_kit() -> None:
    modules = ["bridge.cli", "bridge.runtime", *(f"{name}.adapter" for name in _ADAPTERS)]
    code = (
        f"import json, sys, importlib; [importlib.import_module(m) for m in {modules!r}]; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    loaded = set(json.loads(done.stdout))
    assert set(modules) <= loaded
    assert sorted(m for m in loaded if m.startswith("bridge.testing")) == []


@pytest.mark.anyio
async def test_bridge_chat_on_the_embedded_emulator_loads_no_test_kit(tmp_path: Path) -> None:
    out = tmp_path / "modules.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BRIDGE_", "XPANDER_"))
    }
    env["BRIDGE_STORE__URL"] = "memory://"
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-c", _DRIVER, str(out)], env=env, cwd=tmp_path, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    assert b"hello" in done.stdout
    loaded = set(json.loads(out.read_text()))
    assert "bridge.emulator" in loaded
    assert sorted(m for m in loaded if m.startswith("bridge.testing")) == []
    assert _sdks(loaded) == []


def test_no_module_of_the_bridge_or_its_adapters_exceeds_600_lines() -> None:
    roots = [REPO / "src", *sorted((REPO / "adapters").glob("*/src"))]
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text().splitlines())
        for root in roots
        for path in root.rglob("*.py")
    }
    assert len(sizes) > 100
    assert {path: lines for path, lines in sizes.items() if lines > MAX_LINES} == {}
