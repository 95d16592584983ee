"""R5 at CI size: forged, stale, unsigned and malformed requests, fuzzed event streams,
oversize streams, events and messages, malformed configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.chaos._fuzz import MEMORY_BOUND, oversize_streams, run_sse_fuzz
from tests.chaos._hostile import (
    BAD_CONFIGS,
    HostileReport,
    cli_config_error,
    config_errors,
    run_hostile_requests,
)


@pytest.fixture(scope="module")
async def report() -> AsyncIterator[HostileReport]:
    yield await run_hostile_requests()


async def test_forged_stale_and_unsigned_slack_requests_are_refused_with_401(
    report: HostileReport,
) -> None:
    refused = ("slack forged signature", "slack stale timestamp", "slack unsigned")
    assert [report.statuses[kind] for kind in refused] == [[401], [401], [401]]


async def test_unreadable_slack_bodies_are_refused_with_4xx_whoever_sends_them(
    report: HostileReport,
) -> None:
    assert {status // 100 for status in report.statuses["slack unsigned odd body"]} == {4}
    assert max(report.statuses["slack signed odd body"]) < 500


async def test_malformed_timestamps_and_oversize_declared_bodies_are_4xx(
    report: HostileReport,
) -> None:
    assert report.statuses["slack bad timestamp"] == [401]
    assert report.statuses["slack oversize"] == [413]


async def test_telegram_webhook_requests_without_the_secret_are_refused_with_403(
    report: HostileReport,
) -> None:
    assert report.statuses["telegram no secret"] == [403]
    assert report.statuses["telegram wrong secret"] == [403]


async def test_malformed_telegram_updates_are_refused_not_answered_with_500(
    report: HostileReport,
) -> None:
    statuses = report.statuses["telegram odd body"]
    assert max(statuses) < 500
    assert statuses.count(400) >= len(statuses) - 1


async def test_no_hostile_request_starts_a_turn_and_the_bridge_keeps_serving(
    report: HostileReport,
) -> None:
    assert report.still_serving
    assert sorted(report.invokes.values()) == [1, 1, 1]


async def test_100k_character_messages_are_answered_exactly_once(report: HostileReport) -> None:
    assert report.answered["slack 100k"] == 1
    assert report.answered["telegram 100k"] == 1
    assert report.answered["telegram plain"] == 1


async def test_an_event_over_max_event_bytes_is_dropped_and_its_answer_fetched_by_polling(
    report: HostileReport,
) -> None:
    assert report.answered["telegram 5000-byte event"] == 1


def test_fuzzed_event_streams_yield_events_or_raise_upstream_errors_only() -> None:
    outcomes = run_sse_fuzz(150)
    assert sum(outcomes.values()) == 150
    assert outcomes["events"] > 0
    assert {"StreamError", "TransportError", "EventTooLargeError"} <= set(outcomes)


async def test_streams_far_over_the_event_bound_are_refused_in_bounded_memory() -> None:
    with anyio.fail_after(60):
        outcomes, peak = await oversize_streams()
    assert outcomes == ["EventTooLargeError", "EventTooLargeError", "StreamError"]
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("syntax", None),
        ("type", "conversations.lock_lease"),
        ("typo", "conversations.lock_leese"),
        ("adapter type", "adapters.telegram.poll_timeout"),
    ],
)
def test_malformed_config_is_a_config_error_naming_the_key_and_the_file(
    name: str, key: str | None, tmp_path: Path
) -> None:
    assert set(BAD_CONFIGS) == {"syntax", "type", "typo", "adapter type"}
    error = config_errors(tmp_path)[name]
    assert error.key == key
    assert error.path == str(tmp_path / f"{name.replace(' ', '-')}.toml")


def test_bridge_serve_with_a_malformed_config_exits_2_without_a_traceback(tmp_path: Path) -> None:
    code, stderr = cli_config_error(tmp_path)
    assert code == 2
    assert "adapters.telegram.poll_timeout" in stderr
    assert str(tmp_path / "cli-bad.toml") in stderr
    assert "Traceback" not in stderr
