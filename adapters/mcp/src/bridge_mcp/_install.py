"""`bridge mcp install CLIENT`: write or merge an MCP client's configuration so that it
starts `bridge mcp` over stdio, with the right command for how the bridge is installed."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.adapters import CommandContext
from bridge.errors import ConfigError

__all__ = ["CLIENTS", "install_command", "server_entry"]


@dataclass(frozen=True)
class Client:
    """Where one MCP client keeps its servers, and how it spells an entry."""

    label: str
    relative: str  # below the home directory, or below the user's application directory
    servers_key: str  # "mcpServers" or "servers"
    typed: bool  # entries carry "type": "stdio"
    in_app_dir: bool = False

    def path(self, home: Path, platform: str, env: dict[str, str]) -> Path:
        """The documented location of the client's user-level configuration."""
        if not self.in_app_dir:
            return home / self.relative
        if platform == "darwin":
            base = home / "Library" / "Application Support"
        elif platform == "win32":
            base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        else:
            base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
        return base / self.relative


CLIENTS: dict[str, Client] = {
    "claude-code": Client("Claude Code (user scope)", ".claude.json", "mcpServers", True),
    "claude-desktop": Client(
        "Claude Desktop", "Claude/claude_desktop_config.json", "mcpServers", False, True
    ),
    "cursor": Client("Cursor (global)", ".cursor/mcp.json", "mcpServers", False),
    "vscode": Client("VS Code (user profile)", "Code/User/mcp.json", "servers", True, True),
}


def _checkout_root() -> Path | None:
    """The project directory when the bridge runs from a source checkout under uv."""
    package = Path(__file__).resolve()
    for parent in package.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "adapters" / "mcp").is_dir():
            venv = (parent / ".venv").resolve()
            return parent if Path(sys.prefix).resolve() == venv else None
    return None


def launch_command() -> list[str]:
    """How to start `bridge mcp` the way this bridge is installed: `uv run --directory`
    from a checkout, the environment's own `bridge` script when installed (uv tool, pipx,
    a virtual environment), else this interpreter with `-m bridge`."""
    root = _checkout_root()
    uv = shutil.which("uv")
    if root is not None and uv:
        return [uv, "run", "--frozen", "--directory", str(root), "bridge", "mcp"]
    script = Path(sys.executable).parent / ("bridge.exe" if sys.platform == "win32" else "bridge")
    if script.exists():
        return [str(script), "mcp"]
    return [sys.executable, "-m", "bridge", "mcp"]


def server_entry(client: Client, config_file: Path | None) -> dict[str, Any]:
    """The client's entry for the bridge. The API key is never written: it comes from the
    bridge's config file or the client's environment."""
    command, *args = launch_command()
    env = {"BRIDGE_CONFIG": str(config_file.resolve())} if config_file else {}
    entry: dict[str, Any] = {"command": command, "args": args, "env": env}
    return {"type": "stdio", **entry} if client.typed else entry


def _merge(path: Path, client: Client, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid JSON, left unchanged ({exc})", path=str(path)) from None
    if not isinstance(current, dict) or not isinstance(current.get(client.servers_key, {}), dict):
        raise ConfigError(
            f"expected a JSON object with an object {client.servers_key!r}, left unchanged",
            path=str(path),
        )
    current.setdefault(client.servers_key, {})[name] = entry
    return current


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".bridge-tmp")
    partial.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if path.exists():
        shutil.copymode(path, partial)
    os.replace(partial, path)


def install_command(ctx: CommandContext, argv: list[str]) -> int:
    """`bridge mcp install CLIENT [--name NAME] [--print]`."""
    parser = argparse.ArgumentParser(
        prog="bridge mcp install",
        description="Add the bridge to an MCP client's configuration (merged, others kept).",
    )
    parser.add_argument("client", choices=sorted(CLIENTS))
    parser.add_argument("--name", default="agents", help="the server's name in the client")
    parser.add_argument(
        "--print", action="store_true", dest="show", help="print the entry instead of writing"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    client = CLIENTS[args.client]
    entry = server_entry(client, ctx.settings.config_path)
    path = client.path(Path.home(), sys.platform, dict(os.environ))
    if args.show:
        ctx.out.write(json.dumps({client.servers_key: {args.name: entry}}, indent=2) + "\n")
        ctx.err.write(f"(for {client.label}: {path})\n")
        return 0
    _write(path, _merge(path, client, args.name, entry))
    ctx.err.write(f"added MCP server {args.name!r} for {client.label} in {path}\n")
    if ctx.settings.config_path is None:
        ctx.err.write(
            "no config file: the client's environment must provide XPANDER_API_KEY "
            "(without it the bridge answers from its embedded emulator)\n"
        )
    return 0
