"""Behaviour of the output scheduler, driven over a fake clock and a fake platform."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import PlatformRateLimitError
from bridge.scheduler import Bucket, Destination, Outcome, OutputScheduler, Priority, Rate


class FakeClock:
    """Virtual time: a sleep yields once, then moves time to its deadline."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        deadline = self.time + max(seconds, 0.0)
        await anyio.lowlevel.checkpoint()
        self.time = max(self.time, deadline)


@dataclass
class Sent:
    time: float
    destination: str
    slot: Hashable
    text: str


@dataclass
class FakePlatform:
    """Records every call; `failures` holds what the next calls raise (None: succeed)."""

    clock: FakeClock
    calls: list[Sent] = field(default_factory=list)
    texts: dict[tuple[str, Hashable], str] = field(default_factory=dict)
    failures: deque[float | Exception | None] = field(default_factory=deque)
    on_call: Callable[[Sent], None] | None = None

    def edit(self, destination: str, slot: Hashable, text: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            sent = Sent(self.clock.now(), destination, slot, text)
            self.calls.append(sent)
            if self.on_call is not None:
                self.on_call(sent)
            failure = self.failures.popleft() if self.failures else None
            if isinstance(failure, float):
                raise PlatformRateLimitError(failure, platform="fake", method="edit")
            if failure is not None:
                raise failure
            self.texts[(destination, slot)] = text
            return text

        return call

    def sent_texts(self) -> list[str]:
        return [c.text for c in self.calls]


def within_budget(times: list[float], rate: Rate) -> bool:
    """Token-bucket bound: any n calls spread over T seconds need n <= burst + rate*T."""
    return all(
        j - i + 1 <= rate.burst + rate.per_second * (times[j] - times[i]) + 1e-6
        for i in range(len(times))
        for j in range(i, len(times))
    )


async def test_ops_run_by_priority_then_in_submission_order() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
        ops = [
            sched.post("chat", platform.edit("chat", "a", "delta a"), slot="a"),
            sched.post("chat", platform.edit("chat", "b", "status"), priority=Priority.STATUS),
            sched.post("chat", platform.edit("chat", "c", "prompt 1"), priority=Priority.PROMPT),
            sched.post("chat", platform.edit("chat", "d", "final"), priority=Priority.FINAL),
            sched.post("chat", platform.edit("chat", "e", "prompt 2"), priority=Priority.PROMPT),
        ]
        with anyio.fail_after(5):
            results = [await op.wait() for op in ops]
    assert platform.sent_texts() == ["final", "prompt 1", "prompt 2", "status", "delta a"]
    assert results == ["delta a", "status", "prompt 1", "final", "prompt 2"]
    assert [c.time for c in platform.calls] == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_ops_for_one_slot_keep_submission_order_whatever_their_priority() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
        sched.post("chat", platform.edit("chat", "m", "prompt"), slot="m", priority=Priority.PROMPT)
        sched.post("chat", platform.edit("chat", "m", "answer"), slot="m", priority=Priority.FINAL)
    assert platform.sent_texts() == ["prompt", "answer"]


async def test_a_newer_delta_replaces_the_queued_delta_for_the_same_slot() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
        first = sched.post("chat", platform.edit("chat", "m", "H"), slot="m", text="H")
        await first.wait()  # the bucket is now empty: the next deltas queue up
        older = sched.post("chat", platform.edit("chat", "m", "He"), slot="m", text="He")
        other = sched.post("chat", platform.edit("chat", "n", "x"), slot="n", text="x")
        newest = await sched.submit("chat", platform.edit("chat", "m", "Hey"), slot="m", text="Hey")
        assert await older.wait() is None
        assert older.outcome is Outcome.SUPERSEDED
        assert await other.wait() == "x"
    assert newest == "Hey"
    assert platform.sent_texts() == ["H", "x", "Hey"]
    assert sched.stats.coalesced == 1


async def test_a_stale_status_line_is_dropped_for_the_newer_one() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    status = Priority.STATUS
    async with OutputScheduler.open(default=Rate(0.5, 1), clock=clock) as sched:
        await sched.submit(
            "chat", platform.edit("chat", "s", "thinking"), slot="s", priority=status
        )
        stale = [
            sched.post("chat", platform.edit("chat", "s", f"step {i}"), slot="s", priority=status)
            for i in range(3)
        ]
        latest = sched.post("chat", platform.edit("chat", "s", "step 3"), slot="s", priority=status)
        for op in stale:
            assert await op.wait() is None
        assert await latest.wait() == "step 3"
    assert platform.sent_texts() == ["thinking", "step 3"]
    assert [op.outcome for op in stale] == [Outcome.SUPERSEDED] * 3
    assert platform.calls[1].time == 2.0


async def test_final_supersedes_queued_deltas_of_its_slot_but_is_never_superseded() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
        await sched.submit("chat", platform.edit("chat", "m", "a"), slot="m", text="a")
        delta = sched.post("chat", platform.edit("chat", "m", "ab"), slot="m", text="ab")
        final = sched.post(
            "chat", platform.edit("chat", "m", "abc"), slot="m", text="abc", priority=Priority.FINAL
        )
        late = sched.post("chat", platform.edit("chat", "m", "abcd"), slot="m", text="abcd")
        assert await final.wait() == "abc"
        assert await late.wait() == "abcd"
    assert delta.outcome is Outcome.SUPERSEDED
    assert platform.sent_texts() == ["a", "abc", "abcd"]


async def test_an_op_whose_text_is_already_on_the_platform_is_skipped() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(100.0, 10), clock=clock) as sched:
        assert await sched.submit("chat", platform.edit("chat", "m", "same"), slot="m", text="same")
        again = sched.post("chat", platform.edit("chat", "m", "same"), slot="m", text="same")
        assert await again.wait() is None
        elsewhere = sched.post("chat", platform.edit("chat", "n", "same"), slot="n", text="same")
        assert await elsewhere.wait() == "same"
    assert again.outcome is Outcome.SKIPPED
    assert platform.sent_texts() == ["same", "same"]
    assert sched.stats.skipped == 1


async def test_a_rate_limited_op_waits_retry_after_then_sends_the_newest_text() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.failures.append(7.0)
    async with OutputScheduler.open(default=Rate(10.0, 5), clock=clock) as sched:
        newer: list[object] = []

        def arrive_while_limited(sent: Sent) -> None:
            if sent.text == "v1":
                newer.append(sched.post("chat", platform.edit("chat", "m", "v2"), slot="m"))

        platform.on_call = arrive_while_limited
        first = sched.post("chat", platform.edit("chat", "m", "v1"), slot="m", text="v1")
        assert await first.wait() is None
    assert first.outcome is Outcome.SUPERSEDED
    assert [(c.time, c.text) for c in platform.calls] == [(0.0, "v1"), (7.0, "v2")]
    assert platform.texts[("chat", "m")] == "v2"
    stats = sched.stats
    assert (stats.rate_limited, stats.rate_limited_seconds) == (1, 7.0)
    assert stats.calls == {"chat": 2}


async def test_a_rate_limit_pauses_the_destination_and_its_shared_buckets() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.failures.append(4.0)
    rates = {"slack:T1:*": Rate(100.0, 100)}
    async with OutputScheduler.open(rates=rates, default=Rate(100.0, 100), clock=clock) as sched:
        tier = ("slack:T1:chat.update",)
        sched.post("C1", platform.edit("C1", "m", "one"), buckets=tier)
        sched.post("C2", platform.edit("C2", "m", "two"), buckets=tier)
        sched.post("C3", platform.edit("C3", "m", "three"))
    assert [(c.destination, c.time) for c in platform.calls] == [
        ("C1", 0.0),
        ("C3", 0.0),
        ("C1", 4.0),
        ("C2", pytest.approx(4.01)),
    ]


async def test_final_is_retried_through_rate_limits_until_sent() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.failures.extend([1.0, 2.0, 3.0])
    async with OutputScheduler.open(default=Rate(10.0, 1), clock=clock) as sched:
        result = await sched.submit(
            "chat", platform.edit("chat", "m", "answer"), slot="m", priority=Priority.FINAL
        )
    assert result == "answer"
    assert [c.time for c in platform.calls] == [0.0, 1.0, 3.0, 6.0]
    assert sched.stats.rate_limited == 3


async def test_other_errors_reach_the_submitter_and_the_queue_goes_on() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    platform.failures.append(LookupError("message to edit not found"))
    async with OutputScheduler.open(default=Rate(10.0, 1), clock=clock) as sched:
        failing = sched.post("chat", platform.edit("chat", "m", "x"), slot="m", text="x")
        after = sched.post("chat", platform.edit("chat", "n", "y"), slot="n")
        with pytest.raises(LookupError):
            await failing.wait()
        assert await after.wait() == "y"
    assert failing.outcome is Outcome.FAILED
    assert sched.stats.failed == 1


async def test_calls_respect_every_bucket_they_draw_from() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    tier = Rate(per_second=0.5, burst=2)
    rates = {"workspace": tier, "C*": Rate(50.0, 10)}
    async with OutputScheduler.open(rates=rates, clock=clock) as sched:
        for i in range(6):
            dest = f"C{i % 3}"
            sched.post(dest, platform.edit(dest, i, str(i)), buckets=["workspace"])
    times = [c.time for c in platform.calls]
    assert len(times) == 6
    assert times[:2] == [0.0, 0.0]
    assert within_budget(times, tier)
    assert not within_budget(times, Rate(per_second=0.6, burst=1))


async def test_typed_destinations_and_buckets_share_budgets_with_their_string_forms() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    tier = Rate(per_second=0.5, burst=2)
    rates = {Bucket.every("chat", "post"): tier, Destination("chat", "*"): Rate(50.0, 10)}
    async with OutputScheduler.open(rates=rates, clock=clock) as sched:
        for i in range(6):
            space = f"C{i % 3}"
            dest = Destination("chat", space)
            # half typed, half the string form: one budget all the same
            bucket = Bucket("chat", "T1", "post") if i % 2 else "chat:T1:post"
            sched.post(dest, platform.edit(str(dest), i, str(i)), buckets=[bucket])
    times = [c.time for c in platform.calls]
    assert str(Destination("chat", "C1")) == "chat:C1"
    assert str(Bucket("chat", "T1", "post")) == "chat:T1:post"
    assert sched.stats.calls == {"chat:C0": 2, "chat:C1": 2, "chat:C2": 2}
    assert len(times) == 6
    assert within_budget(times, tier)
    assert not within_budget(times, Rate(per_second=0.6, burst=1))


async def test_queued_ops_are_delivered_when_the_block_exits() -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
        handles = [sched.post("chat", platform.edit("chat", i, f"m{i}")) for i in range(3)]
    assert [h.outcome for h in handles] == [Outcome.SENT] * 3
    with pytest.raises(anyio.ClosedResourceError):
        sched.post("chat", platform.edit("chat", 9, "late"))


class FrozenClock(FakeClock):
    """Time that never moves: whatever waits for a token waits for ever."""

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep_forever()


async def test_ops_still_queued_when_the_block_fails_fail_instead_of_hanging() -> None:
    clock = FrozenClock()
    platform = FakePlatform(clock)
    with pytest.raises(RuntimeError):
        async with OutputScheduler.open(default=Rate(1.0, 1), clock=clock) as sched:
            handles = [sched.post("chat", platform.edit("chat", i, f"m{i}")) for i in range(2)]
            await handles[0].wait()
            raise RuntimeError("adapter crashed")
    assert handles[1].outcome is Outcome.FAILED
    with pytest.raises(anyio.ClosedResourceError):
        await handles[1].wait()
    assert platform.sent_texts() == ["m0"]


async def test_the_default_clock_paces_nothing_when_rates_are_high() -> None:
    platform = FakePlatform(FakeClock())
    with anyio.fail_after(5):
        async with OutputScheduler.open(default=Rate(10_000.0, 100)) as sched:
            results = [
                await sched.submit("chat", platform.edit("chat", "m", f"t{i}"), text=f"t{i}")
                for i in range(20)
            ]
    assert results == [f"t{i}" for i in range(20)]


def test_rates_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Rate(per_second=0.0, burst=1)
    with pytest.raises(ValueError):
        Rate(per_second=1.0, burst=0)


# --- property: streamed deltas under random rate limits -------------------------------

chunk = st.text(alphabet="ab😀 ", max_size=4)
action = st.one_of(
    st.tuples(st.just("delta"), st.integers(0, 1), chunk),
    st.tuples(st.just("tick"), st.floats(0.0, 3.0)),
    st.tuples(st.just("limit"), st.floats(0.0, 5.0)),
)
rate = st.builds(Rate, per_second=st.floats(0.2, 5.0), burst=st.integers(1, 3))


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(action, max_size=40), chat_rate=rate, shared_rate=rate)
def test_streamed_text_ends_complete_and_within_budget(
    actions: list[tuple[object, ...]], chat_rate: Rate, shared_rate: Rate
) -> None:
    clock = FakeClock()
    platform = FakePlatform(clock)
    dests = ["chat0", "chat1"]
    text = dict.fromkeys(dests, "")

    async def scenario() -> None:
        rates = {"chat*": chat_rate, "shared": shared_rate}
        async with OutputScheduler.open(rates=rates, clock=clock) as sched:
            for step in actions:
                if step[0] == "delta":
                    dest = dests[int(str(step[1]))]
                    text[dest] += str(step[2])
                    call = platform.edit(dest, "m", text[dest])
                    sched.post(dest, call, slot="m", text=text[dest], buckets=["shared"])
                elif step[0] == "tick":
                    await clock.sleep(float(str(step[1])))
                else:
                    platform.failures.append(float(str(step[1])))
            finals = [
                sched.post(
                    dest,
                    platform.edit(dest, "m", text[dest]),
                    slot="m",
                    text=text[dest],
                    buckets=["shared"],
                    priority=Priority.FINAL,
                )
                for dest in dests
            ]
            with anyio.fail_after(5):
                for final in finals:
                    await final.wait()
        assert all(f.outcome in (Outcome.SENT, Outcome.SKIPPED) for f in finals)

    anyio.run(scenario)
    for dest in dests:
        assert platform.texts.get((dest, "m"), "") == text[dest]
        assert within_budget([c.time for c in platform.calls if c.destination == dest], chat_rate)
    assert within_budget([c.time for c in platform.calls], shared_rate)
