"""The bridge's HTTP listener alone in a process with few free descriptors, for the accept
flood test: prints `PORT <n>` once listening, then `GOAL` after 20 accept failures."""

from __future__ import annotations

import logging
import os
import resource
from asyncio import constants

import anyio

from bridge.config import HttpConfig
from bridge.http import HttpApp
from bridge.logs import configure_logging

GOAL = 20


class _Count(logging.Filter):
    """Counts accept failures before the bridge's own filter sees (and thins) them."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "out of system resource" in record.getMessage():
            self.seen += 1
            if self.seen == GOAL:
                print("GOAL", flush=True)
        return True


async def main() -> None:
    configure_logging("INFO", "plain")
    logging.getLogger("asyncio").addFilter(_Count())
    app = HttpApp(HttpConfig(header_timeout=120, log_interval=3600))
    async with anyio.create_task_group() as group:
        port = await group.start(app.serve, "127.0.0.1", 0)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        spare = len(os.listdir("/proc/self/fd")) + 16
        resource.setrlimit(resource.RLIMIT_NOFILE, (spare, hard))
        print(f"PORT {port}", flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    constants.ACCEPT_RETRY_DELAY = 0.01  # asyncio retries accept after 1 s; the test needs many
    anyio.run(main)
