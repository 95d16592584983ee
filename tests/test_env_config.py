"""Configuration from the environment: lists, tables, case, the conventional variables,
and errors that name the variable."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from bridge_mcp import MCPAdapter
from bridge_mcp._config import MCPConfig
from bridge_slack import SlackConfig
from bridge_telegram import TelegramConfig

from bridge import errors
from bridge.adapters import build_adapter, validate_adapter_config
from bridge.config import load_settings
from bridge.runtime import Runtime, serve
from bridge.testing import open_emulator

SLACK = {"BRIDGE_ADAPTERS__SLACK__MODE": "socket"}


def slack(env: dict[str, str]) -> SlackConfig:
    return validate_adapter_config(load_settings(None, environ=env), "slack", SlackConfig)


@pytest.mark.parametrize("value", ['["C0ABC", "D0XyZ"]', "C0ABC, D0XyZ", "C0ABC,D0XyZ,"])
def test_lists_are_json_or_comma_separated_and_keep_their_case(value: str) -> None:
    config = slack(
        {
            **SLACK,
            "BRIDGE_ADAPTERS__SLACK__ALLOWED_CHANNELS": value,
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_APP_TOKEN": "xapp-1",
        }
    )
    assert config.allowed_channels == ["C0ABC", "D0XyZ"]


def test_integer_lists_and_tables_from_the_environment() -> None:
    settings = load_settings(
        None,
        environ={
            "BRIDGE_ADAPTERS__TELEGRAM__BOT_TOKEN": "123:AbC",
            "BRIDGE_ADAPTERS__TELEGRAM__ALLOWED_CHAT_IDS": "[-1001, 42]",
            "BRIDGE_ADAPTERS__TELEGRAM__ROUTES__-1001__AGENT": "Writer",
            "BRIDGE_ADAPTERS__SLACK__CHANNELS": '{"C0ABC": "Researcher"}',
            "BRIDGE_ADAPTERS__SLACK__CHANNELS__C0DEF": "Writer",
        },
    )
    telegram = validate_adapter_config(settings, "telegram", TelegramConfig)
    assert telegram.allowed_chat_ids == [-1001, 42]
    assert telegram.route_for(-1001).agent == "Writer"
    assert telegram.bot_token.get_secret_value() == "123:AbC"
    assert settings.adapters["slack"]["channels"] == {"C0ABC": "Researcher", "C0DEF": "Writer"}


def test_conventional_variables_apply_below_the_bridge_forms() -> None:
    conventional = {
        "SLACK_BOT_TOKEN": "xoxb-conventional",
        "SLACK_APP_TOKEN": "xapp-conventional",
        "SLACK_SIGNING_SECRET": "sign-conventional",
        "TELEGRAM_BOT_TOKEN": "1:conventional",
    }
    env = {**conventional, **SLACK, "BRIDGE_ADAPTERS__TELEGRAM__ENABLED": "true"}
    config = slack(env)
    assert config.bot_token is not None and config.app_token is not None
    assert config.bot_token.get_secret_value() == "xoxb-conventional"
    assert config.signing_secret is not None
    assert config.signing_secret.get_secret_value() == "sign-conventional"
    settings = load_settings(None, environ=env)
    telegram = validate_adapter_config(settings, "telegram", TelegramConfig)
    assert telegram.bot_token.get_secret_value() == "1:conventional"
    both = {**env, "BRIDGE_ADAPTERS__SLACK__BOT_TOKEN": "xoxb-bridge"}
    assert slack(both).bot_token.get_secret_value() == "xoxb-bridge"  # type: ignore[union-attr]


def test_conventional_variables_do_not_enable_an_adapter(tmp_path: Path) -> None:
    settings = load_settings(None, environ={"SLACK_BOT_TOKEN": "xoxb-1"})
    assert "slack" not in settings.adapters
    config = tmp_path / "bridge.toml"
    config.write_text('[adapters.slack]\nmode = "socket"\n')
    from_file = load_settings(
        config, environ={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"}
    )
    assert build_adapter(from_file, "slack").name == "slack"


def test_a_file_value_is_overridden_and_errors_name_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[adapters.slack]\nmode = "socket"\nuser_rate_limit = 5\n')
    env = {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_APP_TOKEN": "xapp-1",
        "BRIDGE_ADAPTERS__SLACK__USER_RATE_LIMIT": "many",
    }
    with pytest.raises(errors.ConfigError) as caught:
        build_adapter(load_settings(config, environ=env), "slack")
    assert caught.value.key == "adapters.slack.user_rate_limit"
    assert caught.value.path == "environment variable BRIDGE_ADAPTERS__SLACK__USER_RATE_LIMIT"
    with pytest.raises(errors.ConfigError) as bad_json:
        load_settings(None, environ={"BRIDGE_ADAPTERS__SLACK__CHANNELS": "{not json"})
    assert bad_json.value.path == "environment variable BRIDGE_ADAPTERS__SLACK__CHANNELS"


async def test_mcp_tokens_from_the_environment_keep_their_case_and_authenticate() -> None:
    token = "MiXeD-Case-Token-7Q"
    async with open_emulator(api_key="test-key") as emulator:
        settings = load_settings(
            None,
            environ={
                "BRIDGE_UPSTREAM__BASE_URL": emulator.base_url,
                "XPANDER_API_KEY": "test-key",
                "BRIDGE_HTTP__PORT": "0",
                "BRIDGE_STORE__URL": "memory://",
                "BRIDGE_ADAPTERS__MCP__TOKENS": f'[{{"principal": "Ann@Example.com", "token": "{token}"}}]',
            },
        )
        config = validate_adapter_config(settings, "mcp", MCPConfig)
        assert [t.token.get_secret_value() for t in config.tokens] == [token]
        assert config.tokens[0].principal == "Ann@Example.com"
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"accept": "application/json, text/event-stream"}
        async with anyio.create_task_group() as group:
            runtime: Runtime = await group.start(
                partial(serve, settings, adapters=[MCPAdapter(config)])
            )
            async with httpx.AsyncClient(base_url=runtime.http.base_url) as http:
                lowered = await http.post(
                    "/mcp",
                    json=body,
                    headers={**headers, "authorization": f"Bearer {token.lower()}"},
                )
                exact = await http.post(
                    "/mcp", json=body, headers={**headers, "authorization": f"Bearer {token}"}
                )
            group.cancel_scope.cancel()
    assert lowered.status_code == 401
    assert exact.status_code != 401
