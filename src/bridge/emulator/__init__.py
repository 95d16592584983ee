"""A local, faithful emulator of the hosted platform API, with scripted demo agents.

Used for offline development, as the embedded default upstream, and by every test:

    async with open_emulator(slow_silence=0.2) as emu:      # bridge.emulator or bridge.testing
        ...  # talk to emu.base_url with x-api-key: emu.api_key

`serve()` runs one standalone (the `bridge emulator` command).
"""

from bridge.emulator._agents import (
    DEMO_AGENTS,
    AgentSpec,
    Script,
    Timing,
    TurnContext,
    TurnFailedSignal,
)
from bridge.emulator._common import NAMESPACE, agent_id
from bridge.emulator._emulator import Emulator, TaskStateError
from bridge.emulator._faults import Fault, FaultSyntaxError
from bridge.emulator._open import open_emulator
from bridge.emulator._persist import load_state, save_state
from bridge.emulator._server import serve, serving
from bridge.emulator._state import RecordedRequest, TaskRecord, Turn

__all__ = [
    "DEMO_AGENTS",
    "NAMESPACE",
    "AgentSpec",
    "Emulator",
    "Fault",
    "FaultSyntaxError",
    "RecordedRequest",
    "Script",
    "TaskRecord",
    "TaskStateError",
    "Timing",
    "Turn",
    "TurnContext",
    "TurnFailedSignal",
    "agent_id",
    "load_state",
    "open_emulator",
    "save_state",
    "serve",
    "serving",
]
