"""The bridge's test kit, shipped with the library: the platform emulator on a real
socket, a real redis-server and a real PostgreSQL server for the shared stores, the
store conformance suite, and the adapter conformance checks. Platform fakes (Slack Web API, Bot API) ship with their
adapters (`bridge_slack.testing`, `bridge_telegram.testing`).
"""

from bridge.emulator import open_emulator
from bridge.testing._adapters import check_adapter_contract
from bridge.testing._buckets import SHARED_CAPACITY
from bridge.testing._postgres_server import (
    POSTGRES_INSTALL_HINT,
    blocking_postgres_server,
    run_postgres_server,
)
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
    "POSTGRES_INSTALL_HINT",
    "RACE_OPERATIONS",
    "REDIS_INSTALL_HINT",
    "SHARED_CAPACITY",
    "STORE_CHECKS",
    "StoreCheck",
    "blocking_postgres_server",
    "blocking_redis_server",
    "check_adapter_contract",
    "open_emulator",
    "race_in_processes",
    "run_postgres_server",
    "run_redis_server",
]
