"""Configuration: the example files are valid, precedence, errors that name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import errors
from bridge.adapters import build_adapter
from bridge.config import load_settings, secret_values

ROOT = Path(__file__).resolve().parents[1]


def test_the_root_example_loads_as_it_is() -> None:
    settings = load_settings(ROOT / "config.example.toml", environ={})
    assert settings.http.host == "127.0.0.1"
    assert settings.adapters == {}


@pytest.mark.parametrize("name", ["a2a", "mcp", "slack", "telegram"])
def test_each_adapter_example_validates_against_its_model(name: str) -> None:
    settings = load_settings(ROOT / "adapters" / name / "config.example.toml", environ={})
    adapter = build_adapter(settings, name)
    assert adapter.name == name


@pytest.mark.parametrize("name", ["a2a", "mcp", "slack", "telegram"])
def test_the_root_example_documents_every_adapter_key(name: str) -> None:
    root = (ROOT / "config.example.toml").read_text()
    snippet = (ROOT / "adapters" / name / "config.example.toml").read_text()
    for line in snippet.splitlines():
        if line.strip() and not line.startswith("#"):
            assert f"# {line}" in root


def test_environment_beats_the_file_and_flags_beat_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[http]\nport = 1000\n[upstream]\nbase_url = "http://file"\n')
    env = {"BRIDGE_HTTP__PORT": "2000"}
    assert load_settings(config, environ=env).http.port == 2000
    assert load_settings(config, environ=env, overrides={"http": {"port": 3000}}).http.port == 3000
    assert load_settings(config, environ={}).upstream.base_url == "http://file"


def test_xpander_api_key_is_accepted_and_bridge_variable_wins() -> None:
    assert (
        load_settings(None, environ={"XPANDER_API_KEY": "x"}).upstream.api_key.get_secret_value()
        == "x"
    )  # type: ignore[union-attr]
    both = {"XPANDER_API_KEY": "x", "BRIDGE_UPSTREAM__API_KEY": "b"}
    assert load_settings(None, environ=both).upstream.api_key.get_secret_value() == "b"  # type: ignore[union-attr]


def test_a_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[upstream\n")
    with pytest.raises(errors.ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.path == str(config)


def test_a_wrong_type_names_the_key_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[conversations]\npolicy = "shout"\n')
    with pytest.raises(errors.ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.key == "conversations.policy" and caught.value.path == str(config)


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(errors.ConfigError) as caught:
        load_settings(None, environ={"BRIDGE_UPSTREAM__BASEURL": "x"})
    assert caught.value.key is not None and "baseurl" in caught.value.key


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError) as caught:
        load_settings(tmp_path / "nope.toml", environ={})
    assert caught.value.path == str(tmp_path / "nope.toml")


def test_secrets_are_secretstr_and_found_for_redaction() -> None:
    settings = load_settings(
        None,
        overrides={
            "adapters": {"slack": {"bot_token": "xoxb-1"}},
            "conversations": {"handle_secret": "h"},
        },
        environ={"XPANDER_API_KEY": "k"},
    )
    assert "'k'" not in repr(settings.upstream)
    assert set(secret_values(settings)) >= {"k", "h", "xoxb-1"}
