"""R4' on Slack at CI size: `bridge serve` killed with SIGKILL mid-turn and again as each
recovered answer lands, with native streams and with updated messages."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.chaos._slack_kills import run_slack_kills

SEED = 20261128
KILLS = 2


@pytest.mark.parametrize("streaming", [True, False], ids=["streams", "updates"])
async def test_each_answer_lands_once_and_nothing_is_left_unfinished(
    tmp_path: Path, streaming: bool
) -> None:
    report = await run_slack_kills(KILLS, SEED, tmp_path, streaming=streaming)
    assert [round_.finals for round_ in report.rounds] == [1] * KILLS
    assert report.figures.duplicates == 0
    assert report.stale_placeholders == 0
    assert report.exit_codes == [-signal.SIGKILL] * KILLS + [0]
