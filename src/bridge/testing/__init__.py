"""The bridge's test kit, shipped with the library: the platform emulator on a real
socket, a real redis-server and a real PostgreSQL server for the shared stores, the store
conformance and retention suites, the adapter conformance checks, and the upstream wire
codec for fakes of the platform. Platform fakes (Slack Web API, Bot API) ship with their
adapters (`bridge_slack.testing`, `bridge_telegram.testing`). Tests import only this.
"""

from bridge.client._pool import LinearPool, use_linear_pool
from bridge.client._wire import build_invoke_body, parse_event_data
from bridge.emulator import open_emulator
from bridge.testing._adapters import check_adapter_contract
from bridge.testing._buckets import SHARED_CAPACITY
from bridge.testing._postgres_server import (
    POSTGRES_INSTALL_HINT,
    blocking_postgres_server,
    postgres_bin_dir,
    run_postgres_server,
)
from bridge.testing._stores import (
    LEASE,
    RACE_OPERATIONS,
    REDIS_INSTALL_HINT,
    RETENTION,
    RETENTION_CHECKS,
    STORE_CHECKS,
    StoreCheck,
    blocking_redis_server,
    race_in_processes,
    run_redis_server,
)
from bridge.testing._stores import _eventually as eventually

__all__ = [
    "LEASE",
    "POSTGRES_INSTALL_HINT",
    "RACE_OPERATIONS",
    "REDIS_INSTALL_HINT",
    "RETENTION",
    "RETENTION_CHECKS",
    "SHARED_CAPACITY",
    "STORE_CHECKS",
    "LinearPool",
    "StoreCheck",
    "blocking_postgres_server",
    "blocking_redis_server",
    "build_invoke_body",
    "check_adapter_contract",
    "eventually",
    "open_emulator",
    "parse_event_data",
    "postgres_bin_dir",
    "race_in_processes",
    "run_postgres_server",
    "run_redis_server",
    "use_linear_pool",
]
