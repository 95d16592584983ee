"""A bridge process for multi-process tests: runs conversation turns or recovery against a
shared store and an emulator, printing one JSON line per fact on stdout.

Usage: python _worker.py BASE_URL STORE_URL REPLICA say KEY AGENT TEXT [TEXT...]
       python _worker.py BASE_URL STORE_URL REPLICA recover ADAPTER       (until one turn is recovered)
       python _worker.py BASE_URL STORE_URL REPLICA recover-once ADAPTER  (one pass)
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from pydantic import SecretStr

from bridge import errors
from bridge.client import AgentClient
from bridge.config import ConversationsConfig, UpstreamConfig
from bridge.conversations import ConversationKey, Conversations, Message
from bridge.events import TaskCreated
from bridge.models import Task
from bridge.stores import InFlightTurn, open_store


def emit(**fact: Any) -> None:
    print(json.dumps(fact), flush=True)


async def say(conversations: Conversations, key: ConversationKey, agent: str, text: str) -> None:
    async with conversations.turn(key, Message(text=text), agent_id=agent, source="slack") as turn:
        async for event in turn:
            if isinstance(event, TaskCreated):
                await turn.set_reply(where=text)
                emit(created=event.task.id, text=text)
        assert turn.task is not None
        emit(answered=text, task=turn.task.id, result=turn.task.result)


async def main(base_url: str, store_url: str, replica: str, command: str, *args: str) -> None:
    upstream = UpstreamConfig(poll_interval=0.05, poll_interval_max=0.2, backoff_initial=0.01)
    config = ConversationsConfig(
        handle_secret=SecretStr("s"), lock_lease=1.0, recovery_interval=0.1
    )
    store = open_store(store_url)
    await store.open()
    try:
        async with AgentClient(upstream, base_url=base_url, api_key="test-key") as client:
            conversations = Conversations(client, store, config, replica_id=replica)
            async with anyio.create_task_group() as group:
                await group.start(conversations.heartbeat)
                await run(conversations, client, command, args)
                group.cancel_scope.cancel()
    finally:
        await store.close()


async def _print_delivery(
    record: InFlightTurn, task: Task | None, error: errors.UpstreamError | None
) -> None:
    emit(
        delivered=record.turn_id,
        where=record.reply.get("where"),
        result=task.result if task else None,
    )


async def run(
    conversations: Conversations, client: AgentClient, command: str, args: tuple[str, ...]
) -> None:
    if command == "recover-once":
        emit(recovered=await conversations.recover(args[0], _print_delivery))
        return
    if command == "recover":
        delivered = 0

        with anyio.fail_after(20):
            while delivered == 0:
                delivered = await conversations.recover(args[0], _print_delivery)
                if delivered == 0:
                    await anyio.sleep(0.1)
        emit(recovered=delivered)
        return
    key = ConversationKey.parse(args[0])
    agent = (await client.find_agent(args[1])).id
    async with anyio.create_task_group() as group:
        for text in args[2:]:
            group.start_soon(say, conversations, key, agent, text)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:])
