"""Tool names derived from agent names."""

from __future__ import annotations

import random

from bridge_mcp._names import MAX_NAME, tool_names

from bridge.models import Agent


def agent(name: str, agent_id: str) -> Agent:
    return Agent(id=agent_id, name=name)


def test_names_are_lowercase_with_runs_of_other_characters_replaced_and_bounded() -> None:
    names = tool_names(
        [agent("Release Notes — Q3!!", "a1"), agent("x" * 100, "a2"), agent("日本", "a3")]
    )
    assert set(names) == {"release_notes_q3_", "x" * MAX_NAME, "agent"}


def test_colliding_names_get_suffixes_from_agent_ids_whatever_the_listing_order() -> None:
    agents = [
        agent("Support Bot", "0f3c9a7e-1111"),
        agent("support-bot", "9b2d4e6f-2222"),
        agent("support_bot", "77aa88bb-3333"),
        agent("Support  Bot", "0f3c9a7e-4444"),
        agent("start_run", "5e5e5e5e-5555"),
    ]
    expected = tool_names(agents)
    for _ in range(5):
        shuffled = random.sample(agents, len(agents))
        assert tool_names(shuffled) == expected
    assert {name: a.id for name, a in expected.items()} == {
        "support-bot": "9b2d4e6f-2222",
        "support_bot_0f3c9a7e-111": "0f3c9a7e-1111",
        "support_bot_0f3c9a7e-444": "0f3c9a7e-4444",
        "support_bot_77aa88bb-333": "77aa88bb-3333",
        "start_run_5e5e5e5e": "5e5e5e5e-5555",
    }
