"""`Cooldown`: keys set aside after a failure come back once the pause has passed."""

from __future__ import annotations

from bridge.cooldown import Cooldown


def test_a_paused_key_comes_back_after_the_cooldown_and_others_are_untouched() -> None:
    now = [100.0]
    cooldown = Cooldown(30.0, clock=lambda: now[0])
    cooldown.pause("T1")
    assert cooldown.is_paused("T1")
    assert not cooldown.is_paused("T2")
    now[0] = 129.9
    assert cooldown.is_paused("T1")
    now[0] = 130.0
    assert not cooldown.is_paused("T1")
    # A later failure pauses it again.
    cooldown.pause("T1")
    assert cooldown.is_paused("T1")
