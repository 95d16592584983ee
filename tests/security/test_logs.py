"""Logs under attack: a newline in user-controlled text cannot forge a plain log line, and
third-party libraries log nothing below WARNING (request bodies, URLs, one line a request)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import anyio
import httpx
import pytest
from bridge_slack.testing import FakeSlack, event_callback
from bridge_telegram import WEBHOOK_PATH
from bridge_telegram.testing import FakeBotAPI

from bridge.emulator import Emulator
from bridge.logs import configure_logging
from tests.security.conftest import WEBHOOK_SECRET, serving

FORGED = "2026-01-01 00:00:00,000 ERROR bridge: forged line"
THIRD_PARTY = ("slack_bolt", "slack_sdk", "telegram", "httpx", "httpcore", "uvicorn", "mcp")


class _Seen(logging.Handler):
    """Sets `event` once a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def plain_log() -> Iterator[io.StringIO]:
    """The bridge's own plain log configuration, writing to a buffer, undone afterwards."""
    names = ("", *THIRD_PARTY, "uvicorn.access", "uvicorn.error", "bridge_slack.bolt")
    levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    handler = configure_logging("DEBUG", "plain", stream=buffer)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_a_newline_in_user_text_cannot_start_a_log_line(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, plain_log: io.StringIO
) -> None:
    outsider = f"U666\n{FORGED}\r{FORGED}"
    options = {"allowed_users": ["U1"]}
    ignored = _Seen("not on the allow-lists")
    logging.getLogger("bridge_slack").addHandler(ignored)
    async with serving(emulator, slack, telegram, slack_options=options) as edge:
        event = {
            "type": "app_mention",
            "channel": "C1",
            "user": outsider,
            "text": "hi",
            "ts": "1.1",
        }
        assert (await edge.events.event(event_callback(event))).status_code == 200
        with anyio.fail_after(10):
            await ignored.event.wait()
    logging.getLogger("bridge_slack").removeHandler(ignored)
    logging.getLogger("bridge.test").error("boom", exc_info=ValueError(f"x\n{FORGED}"))
    lines = plain_log.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    assert any(f"U666\\n{FORGED}\\r{FORGED}" in line for line in lines)
    traceback = lines[next(i for i, line in enumerate(lines) if "boom" in line) + 1 :]
    assert traceback and traceback[0].startswith("    | ")


async def test_third_party_libraries_log_nothing_below_warning(
    emulator: Emulator, slack: FakeSlack, telegram: FakeBotAPI, plain_log: io.StringIO
) -> None:
    update = {
        "update_id": 9,
        "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
    }
    async with serving(emulator, slack, telegram) as edge, httpx.AsyncClient() as http:
        event = {"type": "app_mention", "channel": "C1", "user": "U1", "text": "hello", "ts": "2.2"}
        await edge.events.event(event_callback(event))
        with anyio.fail_after(10):
            await slack.wait_for(lambda: any(not m.streaming for m in slack.replies("C1", "2.2")))
        await http.post(f"{edge.url}/slack/events", content=b'{"token": "body-in-log"}')
        await http.post(
            f"{edge.url}{WEBHOOK_PATH}",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
    noisy = [
        line
        for line in plain_log.getvalue().splitlines()
        if any(f" {level} {name}" in line for level in ("DEBUG", "INFO") for name in THIRD_PARTY)
    ]
    assert noisy == []
    assert "body-in-log" not in plain_log.getvalue()
    assert all(logging.getLogger(n).getEffectiveLevel() >= logging.WARNING for n in THIRD_PARTY)
