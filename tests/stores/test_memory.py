"""Memory store: expiry follows an injected clock, and stored values are not aliased."""

from __future__ import annotations

from bridge.stores import InFlightTurn, MemoryStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_expiry_follows_an_injected_clock() -> None:
    clock = FakeClock()
    async with MemoryStore(clock=clock, claim_ttl=100) as store:
        assert await store.mark_seen("ev", 10) is True
        assert await store.claim_delivery("t1") is True
        assert await store.acquire_lock("k", "a", 10) is True
        clock.now += 9.9
        assert await store.mark_seen("ev", 10) is False
        assert await store.acquire_lock("k", "b", 5) is False
        clock.now += 0.2
        assert await store.mark_seen("ev", 10) is True
        assert await store.lock_owner("k") is None
        assert await store.renew_lock("k", "a", 5) is False
        assert await store.acquire_lock("k", "b", 5) is True
        assert await store.claim_delivery("t1") is False
        clock.now += 100
        assert await store.claim_delivery("t1") is True


async def test_memory_store_returns_copies_of_recorded_turns() -> None:
    turn = InFlightTurn(
        turn_id="t1", key="k", adapter="slack", agent_id="a", text="hi", source="slack"
    )
    async with MemoryStore() as store:
        await store.record_turn(turn)
        turn.reply["ts"] = "changed after recording"
        stored = await store.get_turn("t1")
        assert stored is not None
        assert stored.reply == {}


async def test_memory_buckets_follow_the_clock_and_forget_idle_ones() -> None:
    clock = FakeClock()
    async with MemoryStore(clock=clock) as store:

        async def take(key: str = "u1") -> float:
            return await store.take_token(key, capacity=2, refill_per_second=0.5)

        assert [await take(), await take()] == [0.0, 0.0]
        assert await take() == 2.0  # a token every two seconds
        clock.now += 1.5
        assert await take() == 0.5
        clock.now += 0.5
        assert await take() == 0.0
        for index in range(3000):
            await take(f"flood-{index}")
        clock.now += 4.0  # every flood bucket is full again, so none need be kept
        for index in range(1100):
            await take(f"later-{index}")
        assert len(store._buckets) < 3000
