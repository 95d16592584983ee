"""The bridge's test kit, shipped with the library: the platform emulator on a real
socket, a real redis-server for the Redis store, the store conformance suite, and the
adapter conformance checks. Platform fakes (Slack Web API, Bot API) ship with their
adapters (`bridge_slack.testing`, `bridge_telegram.testing`).
"""

from bridge.emulator import open_emulator
from bridge.testing._adapters import check_adapter_contract
from bridge.testing._stores import (
    RACE_OPERATIONS,
    REDIS_INSTALL_HINT,
    STORE_CHECKS,
    StoreCheck,
    blocking_redis_server,
    race_in_processes,
    run_redis_server,
)

__all__ = [
    "RACE_OPERATIONS",
    "REDIS_INSTALL_HINT",
    "STORE_CHECKS",
    "StoreCheck",
    "blocking_redis_server",
    "check_adapter_contract",
    "open_emulator",
    "race_in_processes",
    "run_redis_server",
]
