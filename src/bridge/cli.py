"""`bridge …` commands. The only module that prints.

stdout carries answers only; progress, notices and errors go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import anyio
from pydantic import SecretStr

from bridge import errors
from bridge._version import __version__
from bridge.adapters import CommandContext, available_adapters, build_adapter, load_adapter_class
from bridge.client import AgentClient
from bridge.config import Settings, load_settings, secret_values
from bridge.doctor import run_doctor
from bridge.events import (
    AuthEventReceived,
    Event,
    ResumedByPolling,
    TaskFinished,
    TaskUpdated,
    TextDelta,
    ThoughtRecorded,
    ToolCallFinished,
    ToolCallRequested,
)
from bridge.logs import configure_logging
from bridge.models import User
from bridge.runtime import open_client, open_runtime, serve

__all__ = ["main"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bridge", description="Hosted agents in MCP, Slack and Telegram."
    )
    parser.add_argument("--version", action="version", version=f"bridge {__version__}")
    parser.add_argument(
        "--config", help="TOML config file (default: $BRIDGE_CONFIG, ./bridge.toml)"
    )
    parser.add_argument("--base-url", help="platform API base URL")
    parser.add_argument("--api-key", help="platform API key (prefer XPANDER_API_KEY)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser("chat", help="talk to an agent; streams the answer to stdout")
    chat.add_argument("--agent", help="agent name or id")
    chat.add_argument("--thread", help="continue this thread (task id)")
    chat.add_argument("--user-email", help="end-user email sent as input.user")
    chat.add_argument("message", nargs="?", help="the message; omit for an interactive chat")

    commands.add_parser("agents", help="list the agents")

    emulator = commands.add_parser("emulator", help="run the local platform emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8766)
    emulator.add_argument(
        "--api-key",
        dest="emulator_api_key",
        default=None,
        help="key the emulator requires (default: any key accepted is 'dev-key')",
    )

    run = commands.add_parser("serve", help="run the HTTP server and every enabled adapter")
    run.add_argument("--only", action="append", help="run only this adapter (repeatable)")

    commands.add_parser("check-config", help="validate the configuration and print it redacted")
    commands.add_parser(
        "doctor", help="check config, upstream key, store and platforms; exit 1 on failure"
    )
    store = commands.add_parser("store", help="store maintenance")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    store_commands.add_parser(
        "schema", help="print the SQL that creates the Postgres store's schema, for migrations"
    )

    for name in sorted(available_adapters()):
        # No arguments of its own: everything after the name goes to the adapter's command
        # (argparse.REMAINDER would refuse arguments that start with "--").
        commands.add_parser(name, help=f"{name} adapter commands", add_help=False)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    upstream: dict[str, Any] = {}
    if args.base_url:
        upstream["base_url"] = args.base_url
    if args.api_key:
        upstream["api_key"] = args.api_key
    if upstream:
        overrides["upstream"] = upstream
    if args.log_level:
        overrides["log"] = {"level": args.log_level}
    return load_settings(args.config, overrides=overrides)


def _setup_logging(settings: Settings, *, quiet: bool) -> None:
    """Logs go to stderr; interactive commands show only warnings unless a level was chosen."""
    level = settings.log.level.upper()
    if quiet and not settings.log_level_given:
        level = "WARNING"
    configure_logging(level, settings.log.format, secrets=secret_values(settings))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in available_adapters():
        args.args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = _settings(args)
        _setup_logging(
            settings, quiet=args.command in ("chat", "agents", "check-config", "doctor", "mcp")
        )
        return anyio.run(_dispatch, args, settings)
    except errors.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "chat":
        return await _chat(args, settings)
    if command == "agents":
        return await _agents(settings)
    if command == "emulator":
        return await _emulator(args)
    if command == "serve":
        await serve(settings, adapters=None if not args.only else _only(settings, args.only))
        return EXIT_OK
    if command == "check-config":
        return _check_config(settings)
    if command == "doctor":
        return await _doctor(settings)
    if command == "store":  # the only store command: schema
        from bridge.stores.postgres import postgres_schema_sql  # loads the driver

        print(postgres_schema_sql(settings.store.open()), end="")
        return EXIT_OK
    cls = load_adapter_class(command)
    context = CommandContext(
        settings=settings,
        open_runtime=lambda: open_runtime(settings),
        out=sys.stdout,
        err=sys.stderr,
    )
    handler = getattr(cls, "command", None)
    if handler is None:
        print(f"the {command} adapter has no commands", file=sys.stderr)
        return EXIT_USAGE
    result: int = await handler(context, list(args.args))
    return result


def _only(settings: Settings, names: list[str]) -> list[Any]:
    return [build_adapter(settings, name) for name in names]


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _pick_agent(client: AgentClient, wanted: str | None, emulated: bool) -> str:
    if wanted:
        return (await client.find_agent(wanted)).id
    if emulated:
        return (await client.find_agent("echo")).id
    agents = await client.list_agents()
    if len(agents) == 1:
        return agents[0].id
    names = ", ".join(agent.name for agent in agents) or "none"
    raise errors.ConfigError(f"choose an agent with --agent (agents: {names})", key="--agent")


async def _chat(args: argparse.Namespace, settings: Settings) -> int:
    async with open_client(settings) as (client, emulated):
        if emulated:
            _note("bridge: no API key configured; talking to the embedded emulator")
        try:
            agent_id = await _pick_agent(client, args.agent, emulated)
        except errors.UpstreamError as exc:
            _note(f"error: {exc}")
            return EXIT_FAILED
        user = User(email=args.user_email, id=args.user_email) if args.user_email else None
        thread: str | None = args.thread
        if args.message is not None:
            code, thread = await _one_turn(client, agent_id, args.message, thread, user)
            return code
        code = EXIT_OK
        while True:
            _note("you> ")
            line = await anyio.to_thread.run_sync(sys.stdin.readline)
            if not line:
                return code
            if line.strip():
                code, thread = await _one_turn(client, agent_id, line.strip(), thread, user)


async def _one_turn(
    client: AgentClient, agent_id: str, text: str, thread: str | None, user: User | None
) -> tuple[int, str | None]:
    out = sys.stdout
    code = EXIT_OK
    try:
        async with client.stream(
            agent_id, text, thread=thread, user=user, source="api", stop_on_cancel=True
        ) as run:
            async for event in run:
                _show(event, out, run.text)
            thread = run.task_id
    except errors.RunFailedError as exc:
        thread = exc.task_id
        _note(f"error: the agent's turn ended {exc.status}: {exc.task.result or 'no details'}")
        code = EXIT_FAILED
    except errors.UpstreamError as exc:
        _note(f"error: {exc}")
        code = EXIT_FAILED
    if thread:
        _note(f"thread: {thread}")
    return code, thread


def _show(event: Event, out: TextIO, streamed: str) -> None:
    if isinstance(event, TextDelta):
        out.write(event.text)
        out.flush()
    elif isinstance(event, TaskFinished):
        result = event.task.result or ""
        before = streamed
        if result.startswith(before):
            out.write(result[len(before) :])
        out.write("\n")
        out.flush()
    elif isinstance(event, ThoughtRecorded) and event.text:
        _note(f"· thinking: {event.text}")
    elif isinstance(event, ToolCallRequested):
        _note(f"· calling {event.name}")
    elif isinstance(event, ToolCallFinished):
        _note(f"· {event.name} {'failed' if event.is_error else 'done'}")
    elif isinstance(event, ResumedByPolling):
        _note(f"· stream lost ({event.reason}); waiting for the task to finish")
    elif isinstance(event, AuthEventReceived) and event.is_login_required:
        _note(f"· sign-in needed for {event.server_name or 'a connector'}: {event.url}")
    elif isinstance(event, TaskUpdated) and event.task.is_paused:
        request = event.task.hitl_request or {}
        _note(
            f"· paused, waiting for approval: {request.get('title') or request.get('content') or ''}"
        )


async def _agents(settings: Settings) -> int:
    async with open_client(settings) as (client, emulated):
        if emulated:
            _note("bridge: no API key configured; listing the embedded emulator's agents")
        try:
            agents = await client.list_agents()
        except errors.UpstreamError as exc:
            _note(f"error: {exc}")
            return EXIT_FAILED
    rows = [
        (
            a.name,
            a.id,
            a.status or "",
            (a.description or "").splitlines()[0][:60] if a.description else "",
        )
        for a in agents
    ]
    widths = [
        max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(("NAME", "ID", "STATUS"))
    ]
    print(f"{'NAME':<{widths[0]}}  {'ID':<{widths[1]}}  {'STATUS':<{widths[2]}}  DESCRIPTION")
    for name, agent_id, status, description in rows:
        print(f"{name:<{widths[0]}}  {agent_id:<{widths[1]}}  {status:<{widths[2]}}  {description}")
    return EXIT_OK


async def _emulator(args: argparse.Namespace) -> int:
    from bridge.emulator import serve as serve_emulator

    key = args.emulator_api_key or "dev-key"
    _note(
        f"emulator: http://{args.host}:{args.port} (x-api-key: {'<given>' if args.emulator_api_key else key})"
    )
    await serve_emulator(args.host, args.port, key)
    return EXIT_OK


async def _doctor(settings: Settings) -> int:
    checks = await run_doctor(settings)
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}")
    failed = [check for check in checks if not check.ok]
    print(f"{len(checks) - len(failed)} ok, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _check_config(settings: Settings) -> int:
    for name in settings.adapters:
        build_adapter(settings, name)
    dumped = settings.model_dump(mode="python")
    print(f"config file: {settings.config_path or '(none: defaults and environment)'}")
    _print_tree(dumped, "")
    print("configuration is valid")
    return EXIT_OK


def _print_tree(node: Any, prefix: str) -> None:
    for key, value in node.items():
        if isinstance(value, dict) and value:
            _print_tree(value, f"{prefix}{key}.")
        else:
            shown = (
                "********"
                if isinstance(value, SecretStr) or (_secret_name(key) and value)
                else value
            )
            print(
                f"{prefix}{key} = {shown!r}"
                if not isinstance(shown, str) or shown != "********"
                else f"{prefix}{key} = ********"
            )


def _secret_name(key: str) -> bool:
    return any(part in key for part in ("token", "secret", "key", "password"))


if __name__ == "__main__":
    raise SystemExit(main())
