"""Stream throughput: one emulator turn of 20,000 chunk events, consumed by `AgentClient`
and by a bare httpx + `json.loads` loop in the same run. Prints events/s and the ratio.

Goal: AgentClient ≥ 0.7× the bare loop. Loopback only; bounded (a few runs of each).
Run: uv run python bench/stream_throughput.py [--chunks N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import anyio
import httpx

from bridge.client import AgentClient
from bridge.events import TextDelta
from bridge.testing import open_emulator


async def bare_loop(base_url: str, api_key: str, agent_id: str, message: str) -> tuple[int, float]:
    """The baseline: what a hand-written consumer would do."""
    events = 0
    async with httpx.AsyncClient(
        base_url=base_url, headers={"x-api-key": api_key}, timeout=60
    ) as http:
        started = time.perf_counter()
        body = {"input": {"text": message}, "events_streaming": True}
        async with http.stream(
            "POST", f"/v1/agents/{agent_id}/invoke/stream", json=body
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    events += 1
                    if event["type"] == "task_finished":
                        break
        return events, time.perf_counter() - started


async def bridge_client(client: AgentClient, agent_id: str, message: str) -> tuple[int, float]:
    events = 0
    started = time.perf_counter()
    async with client.stream(agent_id, message) as run:
        async for event in run:
            events += 1
            if isinstance(event, TextDelta):
                pass
    return events, time.perf_counter() - started


async def main(chunks: int, rounds: int) -> None:
    message = f"chars={chunks * 8} chunks={chunks} seconds=0"
    async with (
        open_emulator(api_key="bench-key") as emulator,
        AgentClient(base_url=emulator.base_url, api_key="bench-key") as client,
    ):
        agent_id = (await client.find_agent("writer")).id
        bare_rates: list[float] = []
        client_rates: list[float] = []
        for _ in range(rounds):  # interleaved so machine noise hits both alike
            count, seconds = await bare_loop(emulator.base_url, "bench-key", agent_id, message)
            bare_rates.append(count / seconds)
            count, seconds = await bridge_client(client, agent_id, message)
            client_rates.append(count / seconds)
    bare = statistics.median(bare_rates)
    ours = statistics.median(client_rates)
    print(f"stream throughput, {chunks} chunk events per turn, median of {rounds} rounds")
    print(f"  bare httpx + json.loads : {bare:12,.0f} events/s")
    print(f"  bridge AgentClient      : {ours:12,.0f} events/s")
    print(f"  ratio (client / bare)   : {ours / bare:12.2f}   (goal >= 0.70)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.chunks, args.rounds)
