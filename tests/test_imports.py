"""`import bridge` and `bridge chat` load no adapter or platform SDK they do not use, no
module of the bridge or its adapters exceeds 600 lines, and the test suite imports only the
bridge's public modules."""

from __future__ import annotations

import ast
import importlib.util
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


def _is_private_module_of_the_bridge(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "bridge" or not any(part.startswith("_") for part in parts[1:]):
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False


def _private_bridge_imports(source: str) -> list[str]:
    """The private modules of the bridge (`bridge` and below) that `source` imports, each
    with its line; private names of public modules are not modules and do not count."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from bridge.testing import _stores` imports a module too.
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{node.lineno}: {name}" for name in names if _is_private_module_of_the_bridge(name)
        ]
    return found


def test_the_scan_for_private_imports_finds_every_form() -> None:
    source = (
        "from bridge.client._wire import parse_event_data\n"
        "import bridge._private\n"
        "from bridge.testing import _stores\n"
        "from bridge.testing import open_emulator\n"
        "from bridge.stores.sqlite import _SCHEMA_V1\n"
        "from bridge_slack._render import final_parts\n"
        "from ._helpers import thing\n"
    )
    assert _private_bridge_imports(source) == [
        "1: bridge.client._wire",
        "2: bridge._private",
        "3: bridge.testing._stores",
    ]


def test_the_test_suite_imports_no_private_module_of_the_bridge() -> None:
    found = {
        str(path.relative_to(REPO)): imports
        for path in sorted((REPO / "tests").rglob("*.py"))
        if (imports := _private_bridge_imports(path.read_text()))
    }
    assert found == {}


def test_the_chat_layer_loads_its_parts_on_first_use_and_every_public_name_resolves() -> None:
    code = (
        "import json, sys, bridge.chat as chat; before = sorted(sys.modules); "
        "chat.AgentDirectory; directory = sorted(sys.modules); "
        "names = {n: type(getattr(chat, n)).__name__ for n in chat.__all__}; "
        "print(json.dumps([before, directory, names, sorted(dir(chat))]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    before, directory, names, listed = json.loads(done.stdout)
    parts = "bridge.chat._"
    assert [m for m in before if m.startswith(parts)] == []
    assert [m for m in directory if m.startswith(parts)] == ["bridge.chat._directory"]
    assert sorted(names) == sorted(set(names)) and len(names) == 26
    assert set(names) <= set(listed)
    with pytest.raises(AttributeError):
        import bridge.chat

        _ = bridge.chat.NoSuchName  # type: ignore[attr-defined]
