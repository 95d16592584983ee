"""Secrets never printed, state files private, and what `bridge serve` exposes: each item
performed against the real command or over real sockets."""

from __future__ import annotations

import io
import json
import logging
import signal
import stat
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from bridge_telegram.testing import open_fake_bot_api

from bridge.config import load_settings, secret_values
from bridge.logs import configure_logging
from bridge.runtime import Runtime, open_runtime, serve
from tests.cli._kit import bridge, clean_env, emulator, one_line_error, read_until, upstream_env

__all__ = ["emulator"]

SECRETS = {
    "api_key": 'up-"key\\7f',
    "mcp": "mcp-Token-Q9",
    "redis": "redis-pass-3e",
    "url_user": "base-pass-0c",
    "slack_bot": "xoxb-sec-11",
    "slack_signing": "sign-sec-22",
    "telegram": "4242:Tg-Secret-33",
    "handle": "handle-sec-44",
    "ops": "ops-sec-55",
}


def every_secret_config(tmp_path: Path) -> Path:
    config = tmp_path / "bridge.toml"
    config.write_text(
        "[upstream]\n"
        f"api_key = {json.dumps(SECRETS['api_key'])}\n"
        f'base_url = "https://bridge:{SECRETS["url_user"]}@platform.example"\n'
        f'[http]\nops_token = "{SECRETS["ops"]}"\n'
        f'[store]\nurl = "redis://:{SECRETS["redis"]}@127.0.0.1:1/0"\n'
        f'[conversations]\nhandle_secret = "{SECRETS["handle"]}"\n'
        f'[adapters.mcp]\ntokens = [{{ principal = "ann@example.com", token = "{SECRETS["mcp"]}" }}]\n'
        f'[adapters.slack]\nbot_token = "{SECRETS["slack_bot"]}"\n'
        f'signing_secret = "{SECRETS["slack_signing"]}"\n'
        f'[adapters.telegram]\nbot_token = "{SECRETS["telegram"]}"\n'
    )
    return config


def leaked(output: bytes) -> list[str]:
    text = output.decode()
    forms = {name: {s, json.dumps(s)[1:-1]} for name, s in SECRETS.items()}
    return [name for name, values in forms.items() if any(v in text for v in values)]


async def test_check_config_prints_no_secret(tmp_path: Path) -> None:
    result = await bridge("check-config", "--config", str(every_secret_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert leaked(result.stdout + result.stderr) == []
    out = result.stdout.decode()
    assert "upstream.api_key = ********" in out
    assert "store.url = 'redis://:********@127.0.0.1:1/0'" in out
    assert "bridge:********@platform.example" in out
    assert "adapters.mcp.tokens = [1 entries, secrets masked]" in out


async def test_doctor_prints_no_secret(tmp_path: Path) -> None:
    config = every_secret_config(tmp_path)
    result = await bridge("doctor", "--config", str(config), "--log-level", "debug")
    assert result.returncode == 1
    assert "FAIL  store" in result.stdout.decode()
    assert leaked(result.stdout + result.stderr) == []


async def test_the_old_token_shape_is_refused_with_a_migration_message(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[adapters.mcp.tokens]\n"old-shape-token-1" = "ann@example.com"\n')
    result = await bridge("check-config", "--config", str(config))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "'adapters.mcp.tokens'" in line and "[[adapters.mcp.tokens]]" in line
    assert 'principal = "PRINCIPAL"' in line and 'token = "TOKEN"' in line
    assert b"old-shape-token-1" not in result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_logs_mask_every_configured_secret_in_every_escaping(fmt: str) -> None:
    settings = load_settings(
        None,
        overrides={
            "upstream": {"api_key": SECRETS["api_key"]},
            "store": {"url": f"redis://:{SECRETS['redis']}@h:1/0"},
            "adapters": {
                "mcp": {"tokens": [{"principal": "a", "token": SECRETS["mcp"]}]},
                "telegram": {"bot_token": SECRETS["telegram"]},
            },
        },
        environ={},
    )
    stream = io.StringIO()
    handler = configure_logging("INFO", fmt, secrets=secret_values(settings), stream=stream)
    log = logging.getLogger("bridge.test_secrets")
    try:
        for secret in (SECRETS["api_key"], SECRETS["mcp"], SECRETS["redis"], SECRETS["telegram"]):
            log.info("raw %s", secret)
            log.info("json %s", json.dumps({"value": secret}))
            log.info("repr %r", secret)
            log.info("url https://api.telegram.org/bot%s/getMe", secret)
            try:
                raise RuntimeError(f"failed with {secret}")
            except RuntimeError:
                log.exception("traceback")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    lines = [json.loads(line)["message"] for line in output.splitlines()] if fmt == "json" else []
    for secret in (SECRETS["api_key"], SECRETS["mcp"], SECRETS["redis"], SECRETS["telegram"]):
        for form in (secret, json.dumps(secret)[1:-1], repr(secret)[1:-1]):
            assert form not in output
        assert not any(secret in line for line in lines)
    assert output.count("********") >= 16


async def test_a_traceback_does_not_print_the_telegram_token(tmp_path: Path) -> None:
    token = SECRETS["telegram"]
    async with open_fake_bot_api() as fake:
        config = tmp_path / "bridge.toml"
        config.write_text(
            '[http]\nport = 0\n[store]\nurl = "memory://"\n'
            f'[adapters.telegram]\napi_url = "{fake.api_url}"\n'
        )
        env = clean_env(TELEGRAM_BOT_TOKEN=token, BRIDGE_UPSTREAM__ALLOW_EMULATOR="true")
        result = await bridge("serve", "--config", str(config), "--log-level", "debug", env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr.decode()  # debug level: the traceback, masked
    assert leaked(result.stdout + result.stderr) == []


async def test_state_files_are_created_private(emulator: Any, tmp_path: Path) -> None:
    chat = await bridge("chat", "--agent", "echo", "hi", cwd=tmp_path)
    assert chat.returncode == 0, chat.stderr
    config = tmp_path / "bridge.toml"
    config.write_text('[store]\nurl = "sqlite:///state/bridge.db"\n')
    doctor = await bridge(
        "doctor", "--config", str(config), env=upstream_env(emulator), cwd=tmp_path
    )
    assert doctor.returncode == 0, doctor.stdout
    files = [tmp_path / ".bridge" / "emulator.json", tmp_path / "state" / "bridge.db"]
    files += list((tmp_path / "state").glob("bridge.db-*"))
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


async def test_public_adapters_refuse_the_embedded_emulator_unless_allowed(
    tmp_path: Path,
) -> None:
    async with open_fake_bot_api() as fake:
        config = tmp_path / "bridge.toml"
        config.write_text(
            '[http]\nport = 0\n[store]\nurl = "memory://"\n'
            f'[adapters.telegram]\napi_url = "{fake.api_url}"\nbot_token = "{fake.token}"\n'
        )
        refused = await bridge("serve", "--config", str(config), cwd=tmp_path)
        assert refused.returncode == 2
        line = one_line_error(refused)
        assert "embedded emulator" in line and "upstream.allow_emulator" in line
        assert fake.calls == []  # refused before any call to the platform
        process = await anyio.open_process(
            [sys.executable, "-m", "bridge", "serve", "--config", str(config)],
            env=clean_env(BRIDGE_UPSTREAM__ALLOW_EMULATOR="true"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        async with process:
            seen = bytearray()
            await read_until(process.stderr, rb"bridge: telegram: long polling", seen)
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await process.wait() == 0


async def test_serve_never_mounts_the_emulator_control_routes() -> None:
    settings = load_settings(None, overrides={"store": {"url": "memory://"}}, environ={})
    async with open_runtime(settings) as runtime:
        assert runtime.settings.uses_embedded_emulator
        base = runtime.client.config.base_url
        async with httpx.AsyncClient(base_url=base) as http:
            control = [
                await http.get("/_emulator/faults"),
                await http.post("/_emulator/faults", json={"kind": "status", "status": 500}),
                await http.get("/_emulator/requests"),
            ]
            unauthenticated = await http.get("/v1/agents", headers={"x-api-key": "embedded"})
    assert [r.status_code for r in control] == [404, 404, 404]
    assert unauthenticated.status_code == 401


async def test_metrics_and_readyz_require_the_ops_token_when_set(emulator: Any) -> None:
    settings = load_settings(
        None,
        overrides={
            "upstream": {"base_url": emulator.base_url, "api_key": "cli-key"},
            "http": {"port": 0, "ops_token": SECRETS["ops"]},
            "store": {"url": "memory://"},
        },
        environ={},
    )
    async with anyio.create_task_group() as group:
        runtime: Runtime = await group.start(partial(serve, settings, adapters=[]))
        async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
            anonymous = [await http.get("/metrics"), await http.get("/readyz")]
            wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
            good = {"authorization": f"Bearer {SECRETS['ops']}"}
            allowed = [
                await http.get("/metrics", headers=good),
                await http.get("/readyz", headers=good),
            ]
            health = await http.get("/healthz")
        group.cancel_scope.cancel()
    assert [r.status_code for r in anonymous] == [401, 401] and wrong.status_code == 401
    assert [r.status_code for r in allowed] == [200, 200]
    assert health.status_code == 200
