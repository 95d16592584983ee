"""`bridge …` commands. The only module that prints.

stdout carries answers only; progress, notices and errors go to stderr. Every failure is
one line naming the problem (and for configuration the key and where it came from):
exit status 2 for configuration and usage, 1 for runtime failures; the traceback only
at `--log-level debug`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
from pydantic import BaseModel, SecretStr

from bridge import errors
from bridge._console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError, note
from bridge._version import __version__
from bridge.adapters import (
    Adapter,
    CommandContext,
    HasCommands,
    available_adapters,
    build_adapter,
    enabled_adapters,
    load_adapter_class,
    preflight,
)
from bridge.config import Settings, load_settings, redact_url, secret_values
from bridge.logs import configure_logging, redactor
from bridge.models import User
from bridge.runtime import Runtime, open_client, open_runtime, serve

__all__ = ["main"]

logger = logging.getLogger(__name__)

_MASK = "********"


def _global_flags(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """The flags every command accepts, before or after its name."""
    parser.add_argument(
        "--config",
        default=default,
        help="TOML config file (default: $BRIDGE_CONFIG, ./bridge.toml)",
    )
    parser.add_argument(
        "--base-url", default=default, help="platform API base URL (no emulator then)"
    )
    parser.add_argument(
        "--api-key", default=default, help="platform API key (prefer XPANDER_API_KEY)"
    )
    parser.add_argument(
        "--log-level", default=default, help="DEBUG (with tracebacks), INFO, WARNING, ERROR"
    )


def _parser(installed: dict[str, Any]) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _global_flags(common, default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="bridge", description="Hosted agents in MCP, Slack and Telegram."
    )
    parser.add_argument("--version", action="version", version=f"bridge {__version__}")
    _global_flags(parser, default=None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *, flags: bool = True, **options: Any) -> Any:
        parents = [common] if flags else []
        return commands.add_parser(name, help=help_text, parents=parents, **options)

    chat_ = command("chat", "talk to an agent; streams the answer to stdout")
    chat_.add_argument("--agent", help="agent name or id")
    chat_.add_argument("--thread", help="continue this thread (task id); an unknown id is refused")
    chat_.add_argument("--user-email", help="end-user email sent as input.user")
    chat_.add_argument("message", nargs="?", help="the message; omit for an interactive chat")

    command("agents", "list the agents")

    emulator = command("emulator", "run the local platform emulator", flags=False)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8766)
    emulator.add_argument(
        "--api-key",
        dest="emulator_api_key",
        default="dev-key",
        help="the x-api-key the emulator requires; any other key gets 401 (default: dev-key)",
    )

    run = command("serve", "run the HTTP server and every enabled adapter")
    run.add_argument("--only", action="append", help="run only this adapter (repeatable)")

    command("check-config", "validate the configuration and print it redacted")
    command("doctor", "check config, upstream key, store and platforms; exit 1 on failure")
    store = command("store", "store maintenance")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    store_commands.add_parser(
        "schema", help="print the SQL that creates the Postgres store's schema, for migrations"
    )

    for name in sorted(installed):
        # No arguments of its own: everything else after the name goes to the adapter's
        # command (argparse.REMAINDER would refuse arguments that start with "--").
        command(name, f"{name} adapter commands", add_help=False)
    return parser


_FLAGS: dict[tuple[str, ...], str] = {
    ("upstream", "base_url"): "--base-url",
    ("upstream", "api_key"): "--api-key",
    ("log", "level"): "--log-level",
}


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    given: dict[tuple[str, ...], str] = {
        path: value
        for path, value in (
            (("upstream", "base_url"), args.base_url),
            (("upstream", "api_key"), args.api_key),
            (("log", "level"), args.log_level),
        )
        if value
    }
    for (section, key), value in given.items():
        overrides.setdefault(section, {})[key] = value
    flags = {path: _FLAGS[path] for path in given}
    return load_settings(args.config, overrides=overrides, flags=flags)


def _setup_logging(settings: Settings, *, quiet: bool) -> None:
    """Logs go to stderr; interactive commands show only warnings unless a level was chosen."""
    level = settings.log.level.upper()
    if quiet and not settings.log_level_given:
        level = "WARNING"
    configure_logging(level, settings.log.format, secrets=secret_values(settings))


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _wants_debug(args: argparse.Namespace) -> bool:
    level = args.log_level or os.environ.get("BRIDGE_LOG__LEVEL") or ""
    return level.strip().upper() == "DEBUG"


def main(argv: Sequence[str] | None = None) -> int:
    with _start_up():
        installed = available_adapters()  # one scan of the installed distributions
        parser = _parser(installed)
        args, rest = parser.parse_known_args(argv)
        if args.command in installed:
            args.args = rest
        elif rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        settings: Settings | None = None
        try:
            settings = _settings(args)
            _setup_logging(
                settings, quiet=args.command in ("chat", "agents", "check-config", "doctor", "mcp")
            )
            adapter = (
                load_adapter_class(args.command, installed) if args.command in installed else None
            )
        except BaseException as exc:  # the outermost frame: every failure becomes one line
            return _report(exc, settings, debug=_wants_debug(args))
    try:
        return anyio.run(_dispatch, args, settings, adapter)
    except BaseException as exc:  # the outermost frame: every failure becomes one line
        return _report(exc, settings, debug=_wants_debug(args))


@contextmanager
def _start_up() -> Iterator[None]:
    """Loading the command (its modules, classes and validators) makes a great many objects
    that live as long as the process: the cyclic garbage collector, which would walk them
    again and again meanwhile, is off until then; they are then frozen out of the walks of
    every later collection (`gc.freeze`). A few hundred cycles of garbage made meanwhile
    stay, as frozen objects do."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _report(exc: BaseException, settings: Settings | None, *, debug: bool) -> int:
    leaves = list(_leaves(exc))
    if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
        return EXIT_INTERRUPTED
    if all(isinstance(leaf, SystemExit) for leaf in leaves):
        code = leaves[0].code if isinstance(leaves[0], SystemExit) else 1
        return code if isinstance(code, int) else EXIT_FAILED
    first = next((leaf for leaf in leaves if isinstance(leaf, errors.BridgeError)), leaves[0])
    redact: Callable[[str], str] = redactor(secret_values(settings) if settings else ())
    code, line = _describe(first, settings)
    if debug:
        logger.error("%s", line, exc_info=first)
    note(redact(line))
    if code == EXIT_FAILED and not debug and not isinstance(first, errors.BridgeError):
        note("(run with --log-level debug for the traceback)")
    return code


def _describe(exc: BaseException, settings: Settings | None) -> tuple[int, str]:
    if isinstance(exc, errors.ConfigError):
        return EXIT_USAGE, f"configuration error: {exc}"
    if isinstance(exc, UsageError):
        return EXIT_USAGE, f"error: {exc}"
    url = settings.upstream.base_url if settings else "the platform"
    if isinstance(exc, errors.AuthenticationError):
        if settings is not None and not settings.has_api_key:
            return EXIT_FAILED, (
                f"error: {url} needs an API key: set XPANDER_API_KEY or pass --api-key"
            )
        return EXIT_FAILED, f"error: {url} refused the API key (401)"
    if isinstance(exc, errors.UpstreamConnectError):
        return EXIT_FAILED, f"error: cannot connect to the platform at {url}"
    if isinstance(exc, errors.BridgeError):
        return EXIT_FAILED, f"error: {exc}"
    if isinstance(exc, OSError):
        return EXIT_FAILED, f"error: {exc.strerror or exc}" + (
            f": {exc.filename}" if exc.filename else ""
        )
    return EXIT_FAILED, f"error: unexpected {type(exc).__name__}: {exc}"


async def _dispatch(args: argparse.Namespace, settings: Settings, cls: type[Any] | None) -> int:
    """Run the command; `cls` is the adapter class when it is an adapter's."""
    command = args.command
    if command == "chat":
        return await _chat(args, settings)
    if command == "agents":
        return await _agents(settings)
    if command == "emulator":
        return await _emulator(args)
    if command == "serve":
        return await _serve(settings, args.only)
    if command == "check-config":
        return _check_config(settings)
    if command == "doctor":
        return await _doctor(settings)
    if command == "store":  # the only store command: schema
        from bridge.stores.postgres import postgres_schema_sql  # loads the driver

        print(postgres_schema_sql(settings.store.open()), end="")
        return EXIT_OK
    assert cls is not None  # every other command is an adapter's
    context = CommandContext(
        settings=settings,
        open_runtime=lambda: open_runtime(settings),
        out=sys.stdout,
        err=sys.stderr,
    )
    if not isinstance(cls, HasCommands):
        note(f"the {command} adapter has no commands")
        return EXIT_USAGE
    result: int = await cls.command(context, list(args.args))
    return result


async def _serve(settings: Settings, only: list[str] | None) -> int:
    adapters = (
        [build_adapter(settings, name) for name in only] if only else enabled_adapters(settings)
    )
    await serve(settings, adapters=adapters, task_status=_Summary(settings, adapters))
    return EXIT_OK


class _Summary(anyio.abc.TaskStatus[Runtime]):
    """Prints what `bridge serve` serves once everything has started (no task is spawned
    to wait for that: `serve` runs in this task until it is signalled)."""

    def __init__(self, settings: Settings, adapters: list[Adapter]) -> None:
        self.settings, self.adapters = settings, adapters

    def started(self, value: Runtime | None = None) -> None:
        assert value is not None
        for line in _summary(self.settings, value, self.adapters):
            note(f"bridge: {line}")


def _summary(settings: Settings, runtime: Runtime, adapters: list[Adapter]) -> list[str]:
    """What `bridge serve` prints once everything has started."""
    base = runtime.http.base_url
    public = (settings.http.public_url or base).rstrip("/")
    upstream = (
        "the embedded emulator (no API key)"
        if settings.uses_embedded_emulator
        else redact_url(settings.upstream.base_url)
    )
    lines = [
        f"serving on {base}; adapters: {', '.join(a.name for a in adapters) or 'none'}",
        f"platform: {upstream}",
    ]
    for adapter in adapters:
        describe = getattr(adapter, "describe", None)
        if describe is not None:
            lines.append(f"{adapter.name}: {describe(public)}")
    lines.append(f"store: {redact_url(settings.store.url)}")
    auth = " (bearer token required)" if settings.http.ops_token else ""
    lines.append(f"metrics: {base}/metrics{auth}; health: {base}/healthz, {base}/readyz")
    return lines


async def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from bridge._chat import chat, check_thread, pick_agent  # the chat layer, for chat only
    from bridge.chat import AgentDirectory

    async with open_client(settings) as (client, emulated):
        if emulated:
            note("bridge: no API key configured; talking to the embedded emulator")
        agent_id = await pick_agent(AgentDirectory(client), args.agent, emulated)
        if args.thread:
            await check_thread(client, args.thread)
        user = User(email=args.user_email, id=args.user_email) if args.user_email else None
        return await chat(client, agent_id, args.message, args.thread, user)


async def _agents(settings: Settings) -> int:
    async with open_client(settings) as (client, emulated):
        if emulated:
            note("bridge: no API key configured; listing the embedded emulator's agents")
        agents = await client.list_agents()
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

    note(f"emulator: http://{args.host}:{args.port} (send x-api-key: {args.emulator_api_key})")
    await serve_emulator(args.host, args.port, args.emulator_api_key)
    return EXIT_OK


async def _doctor(settings: Settings) -> int:
    from bridge.doctor import run_doctor

    checks = await run_doctor(settings)
    redact = redactor(secret_values(settings))
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(redact(f"{'ok  ' if check.ok else 'FAIL'}  {check.name:<{width}}  {check.detail}"))
    failed = [check for check in checks if not check.ok]
    print(f"{len(checks) - len(failed)} ok, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


def _check_config(settings: Settings) -> int:
    """Everything `serve` would refuse is refused here too; then the configuration, with
    every adapter table as its model sees it (defaults included), secrets masked."""
    adapters = {name: build_adapter(settings, name) for name in settings.adapters}
    preflight(settings, enabled_adapters(settings))
    print(f"config file: {settings.config_path or '(none: defaults and environment)'}")
    for line in config_lines(settings, adapters):
        print(line)
    print("configuration is valid")
    return EXIT_OK


def config_lines(settings: Settings, adapters: dict[str, Any]) -> list[str]:
    """`key = value` for every key of the configuration, secrets and URL passwords masked."""
    lines: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            _walk(value, name, lines)
    for name, adapter in adapters.items():
        config = getattr(adapter, "config", None)
        if isinstance(config, BaseModel):
            _walk(config, f"adapters.{name}", lines)
    redact = redactor(secret_values(settings))
    return [redact(line) for line in lines]


def _walk(node: BaseModel, prefix: str, lines: list[str]) -> None:
    for key in type(node).model_fields:
        value = getattr(node, key)
        if isinstance(value, BaseModel):
            _walk(value, f"{prefix}.{key}", lines)
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, BaseModel) for v in value.values())
        ):
            for name, inner in value.items():
                _walk(inner, f"{prefix}.{key}.{name}", lines)
        else:
            lines.append(f"{prefix}.{key} = {_shown(value)}")


def _shown(value: Any) -> str:
    if isinstance(value, SecretStr):
        return _MASK
    if isinstance(value, list) and any(isinstance(item, BaseModel) for item in value):
        return f"[{len(value)} entries, secrets masked]"
    if isinstance(value, str) and "://" in value:
        return repr(redact_url(value))
    return repr(value)


if __name__ == "__main__":
    raise SystemExit(main())
