"""SQLite store: durable across restarts, safe across processes, versioned schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from bridge.errors import StoreError
from bridge.stores import InFlightTurn, SQLiteStore, ThreadRef
from bridge.stores.sqlite import _CHECKPOINT_EVERY, _SCHEMA_V1, SCHEMA_VERSION


def _read_pragma(path: Path, name: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


async def test_sqlite_store_keeps_its_state_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    ref = ThreadRef(task_id="task-1", agent_id="agent-1", owner="U1")
    turn = InFlightTurn(
        turn_id="t1", key="k", adapter="slack", agent_id="a", text="hi", source="slack"
    )
    async with SQLiteStore(path) as store:
        await store.put_thread("slack:T1/C1:1.0", ref)
        await store.record_turn(turn)
        assert await store.mark_seen("ev-1", 60) is True
        assert await store.claim_delivery("t0") is True
        assert await store.acquire_lock("turn:k", "replica-1", 60) is True

    async with SQLiteStore(path) as store:
        assert await store.get_thread("slack:T1/C1:1.0") == ref
        assert await store.list_turns() == [turn]
        assert await store.mark_seen("ev-1", 60) is False
        assert await store.claim_delivery("t0") is False
        assert await store.lock_owner("turn:k") == "replica-1"


async def test_sqlite_store_creates_parent_directories_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bridge.db"
    async with SQLiteStore(path) as store:
        await store.put_thread("k", ThreadRef(task_id="t", agent_id="a"))
    assert _read_pragma(path, "journal_mode") == "wal"
    assert _read_pragma(path, "user_version") == SCHEMA_VERSION


async def test_sqlite_store_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    store = SQLiteStore(path, url="sqlite:///future.db")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert caught.value.url == "sqlite:///future.db"
    await store.close()


async def test_sqlite_store_reports_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    path.write_bytes(b"this is not a database, just some bytes " * 100)
    store = SQLiteStore(path)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert caught.value.url == store.url


async def test_sqlite_store_raises_store_error_when_used_before_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bridge.db")
    with pytest.raises(StoreError):
        await store.get_thread("k")
    assert not (tmp_path / "bridge.db").exists()


async def test_two_sqlite_stores_on_one_file_share_dedupe_claims_and_locks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.db"
    async with SQLiteStore(path) as first, SQLiteStore(path) as second:
        assert await first.mark_seen("ev", 60) is True
        assert await second.mark_seen("ev", 60) is False
        assert await second.claim_delivery("t1") is True
        assert await first.claim_delivery("t1") is False
        assert await first.acquire_lock("k", "a", 60) is True
        assert await second.acquire_lock("k", "b", 60) is False
        assert await second.lock_owner("k") == "a"


async def test_sqlite_store_upgrades_a_version_1_file_and_keeps_its_threads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.db"
    ref = ThreadRef(task_id="task-1", agent_id="agent-1")
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA_V1)
    conn.execute("INSERT INTO threads VALUES (?, ?)", ("k", ref.model_dump_json()))
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    async with SQLiteStore(path) as store:
        assert await store.get_thread("k") == ref
        assert await store.delete_threads("") == 1
    assert _read_pragma(path, "user_version") == SCHEMA_VERSION == 4


async def test_a_write_waits_for_another_process_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bridge.db"
    async with SQLiteStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)  # stands for another process
        try:
            other.execute("BEGIN IMMEDIATE")
            done = anyio.Event()

            async def write() -> None:
                await store.put_record("held", "value", 60)
                done.set()

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(write)
                    # Every task is blocked: the write waits on a worker thread, not the loop.
                    await anyio.wait_all_tasks_blocked()
                    assert not done.is_set()
                    other.execute("COMMIT")
                    await done.wait()
        finally:
            other.close()
        assert await store.get_record("held") == "value"


async def test_the_write_ahead_log_is_checkpointed_as_writes_go_on(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    wal = path.with_name("bridge.db-wal")
    async with SQLiteStore(path) as store:
        for index in range(2 * _CHECKPOINT_EVERY):
            await store.put_record(f"r{index}", "x" * 200, 60)
        first = wal.stat().st_size
        for index in range(6 * _CHECKPOINT_EVERY):
            await store.put_record(f"s{index}", "x" * 200, 60)
        # Checkpointed logs are written again from their start: the file stops growing.
        assert wal.stat().st_size < 1.5 * first
