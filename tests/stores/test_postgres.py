"""Postgres store: its own schema, DDL an operator can apply, one winner across processes."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from bridge.errors import StoreError
from bridge.stores import InFlightTurn, PostgresStore, ThreadRef
from bridge.stores.postgres import SCHEMA_VERSION, schema_sql
from bridge.testing import LEASE, eventually
from tests.stores.conftest import unique_schema


@pytest.fixture
async def admin(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _tables(admin: asyncpg.Connection, schema: str) -> set[str]:
    rows = await admin.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    return {row["tablename"] for row in rows}


async def test_postgres_store_creates_its_schema_on_first_use_and_keeps_rows_in_it(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    schema = unique_schema()
    turn = InFlightTurn(turn_id="t1", key="k", adapter="slack", agent_id="a", text="hi", source="x")
    async with PostgresStore(f"{postgres_url}?schema={schema}") as store:
        await store.put_thread("slack|T1/C1|1.0", ThreadRef(task_id="t", agent_id="a"))
        await store.record_turn(turn)
        await store.mark_seen("ev", 60)
        await store.claim_delivery("t1")
        await store.acquire_lock("turn:k", "a", 60)
        await store.ensure_secret("handles", "s")
        await store.put_record("run:1", "{}", 60)
        assert await store.get_record("run:1") == "{}"
        assert await store.take_token("telegram|1", capacity=5, refill_per_second=1) == 0.0
    assert await _tables(admin, schema) == {
        "meta", "threads", "seen", "turns", "claims", "locks", "secrets", "records", "buckets"
    }  # fmt: skip
    for table in ("threads", "seen", "turns", "claims", "locks", "secrets", "records", "buckets"):
        assert await admin.fetchval(f'SELECT count(*) FROM "{schema}".{table}') == 1, table
    version = await admin.fetchval(f'SELECT value FROM "{schema}".meta')
    assert version == str(SCHEMA_VERSION)


async def test_postgres_stores_in_different_schemas_do_not_see_each_other(
    postgres_url: str,
) -> None:
    async with (
        PostgresStore(postgres_url, schema=unique_schema()) as first,
        PostgresStore(postgres_url, schema=unique_schema()) as second,
    ):
        await first.put_thread("k", ThreadRef(task_id="t", agent_id="a"))
        assert await second.get_thread("k") is None
        assert await first.mark_seen("ev", 60) is True
        assert await second.mark_seen("ev", 60) is True


async def test_a_role_without_create_rights_uses_a_schema_applied_from_schema_sql(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    schema, role = unique_schema(), f"app_{uuid.uuid4().hex[:12]}"
    await admin.execute(schema_sql(schema))
    await admin.execute(f"CREATE ROLE {role} LOGIN")
    await admin.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
    await admin.execute(
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {role}'
    )
    role_url = postgres_url.replace("//bridge@", f"//{role}@")
    async with PostgresStore(role_url, schema=schema) as store:
        await store.put_thread("k", ThreadRef(task_id="t", agent_id="a"))
        assert await store.acquire_lock("k", "a", 30) is True
    with pytest.raises(StoreError) as caught:
        await PostgresStore(role_url, schema=unique_schema()).open()
    assert isinstance(caught.value.__cause__, asyncpg.InsufficientPrivilegeError)


async def test_postgres_store_refuses_a_newer_schema(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    schema = unique_schema()
    await admin.execute(schema_sql(schema))
    await admin.execute(
        f"UPDATE \"{schema}\".meta SET value = '{SCHEMA_VERSION + 1}' WHERE name = 'schema_version'"
    )
    store = PostgresStore(postgres_url, schema=schema)
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert caught.value.url == postgres_url


async def test_postgres_store_reports_an_unreachable_server() -> None:
    with anyio.fail_after(30):
        port = _closed_port()
        url = f"postgresql://bridge@127.0.0.1:{port}/postgres"
        store = PostgresStore(url, timeout=2)
        with pytest.raises(StoreError) as caught:
            await store.open()
    assert caught.value.url == url
    with pytest.raises(StoreError):
        await store.get_thread("k")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_ensure_secret_gives_every_concurrent_caller_the_same_value(
    postgres_url: str,
) -> None:
    url = f"{postgres_url}?schema={unique_schema()}"
    async with PostgresStore(url) as first, PostgresStore(url) as second:
        values: list[str] = []

        async def ensure(store: PostgresStore, index: int) -> None:
            values.append(await store.ensure_secret("handles", f"candidate-{index}"))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for index in range(40):
                    group.start_soon(ensure, (first, second)[index % 2], index)
        assert len(set(values)) == 1
        assert values[0].startswith("candidate-")
        assert await second.ensure_secret("handles", "late") == values[0]
        assert await first.ensure_secret("other", "x") == "x"


async def test_postgres_records_expire_after_their_ttl(postgres_url: str) -> None:
    async with PostgresStore(postgres_url, schema=unique_schema()) as store:
        await store.put_record("run:1", '{"a": "é"}', LEASE)
        await store.put_record("run:2", "kept", 60)
        assert await store.get_record("run:1") == '{"a": "é"}'

        async def expired() -> bool:
            return await store.get_record("run:1") is None

        await eventually(expired)
        assert await store.get_record("run:2") == "kept"


async def test_postgres_store_carries_on_after_the_server_ends_every_connection(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    async def end_every_session() -> None:
        ended = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND usename = current_user"
        )
        assert ended >= 1

    ref = ThreadRef(task_id="t", agent_id="a")
    turn = InFlightTurn(turn_id="t1", key="k", adapter="slack", agent_id="a", text="hi", source="x")
    async with PostgresStore(postgres_url, schema=unique_schema(), pool_size=3) as store:
        await end_every_session()
        await store.put_thread("k", ref)  # retried on a fresh connection
        await end_every_session()
        assert await store.get_thread("k") == ref
        await end_every_session()
        await store.record_turn(turn)
        await end_every_session()
        assert await store.list_turns() == [turn]
        await end_every_session()
        assert await store.acquire_lock("lock", "a", 30) is True
        await end_every_session()
        try:  # a delivery mark is never retried: it may fail, but never answers wrongly
            assert await store.mark_seen("ev-1", 60) is True
        except StoreError as exc:
            assert isinstance(exc.__cause__, Exception)
        assert await store.mark_seen("ev-2", 60) is True
        assert await store.mark_seen("ev-2", 60) is False


async def test_postgres_buckets_expire_once_they_would_be_full_again(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    schema = unique_schema()
    async with PostgresStore(postgres_url, schema=schema) as store:
        assert await store.take_token("slack|T1:U1", capacity=20, refill_per_second=1 / 3) == 0.0
        await store.take_token("idle", capacity=1, refill_per_second=1 / LEASE)
        ttl = await admin.fetchval(
            f'SELECT expires_at - at FROM "{schema}".buckets WHERE key = $1', "slack|T1:U1"
        )
        assert ttl == pytest.approx(60.0, abs=1e-3)  # timestamps kept to the microsecond
        await eventually(lambda: _purged(store, admin, schema, "idle"))


async def _purged(store: PostgresStore, admin: asyncpg.Connection, schema: str, key: str) -> bool:
    for index in range(256):  # the store purges expired rows every 256 writes
        await store.mark_seen(f"ev-{key}-{index}-{uuid.uuid4().hex}", 60)
    return await admin.fetchval(f'SELECT count(*) FROM "{schema}".buckets WHERE key = $1', key) == 0


async def test_a_lock_taken_as_its_holder_lets_go_hands_over_the_mapping_it_wrote(
    postgres_url: str, admin: asyncpg.Connection
) -> None:
    # One statement reads one snapshot, taken before it waits for the lock row: the
    # holder's transaction that maps the key and lets go commits after that snapshot.
    schema = unique_schema()
    ref = ThreadRef(task_id="task-1", agent_id="a")
    taken: list[tuple[bool, ThreadRef | None]] = []
    async with PostgresStore(f"{postgres_url}?schema={schema}") as store:
        assert await store.acquire_lock("turn:k", "replica-a", 60) is True
        holder = admin.transaction()
        await holder.start()
        await admin.execute(
            f'INSERT INTO "{schema}".threads (key, data, expires_at) '
            "VALUES ($1, $2, extract(epoch from clock_timestamp()) + 600)",
            "k",
            ref.model_dump_json(),
        )
        await admin.execute(f'DELETE FROM "{schema}".locks WHERE name = $1', "turn:k")

        async def take() -> None:
            taken.append(await store.acquire_lock_and_get_thread("turn:k", "b", 60, "k"))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(take)
                await eventually(lambda: _waits_for_a_lock(postgres_url))
                await holder.commit()
        assert taken == [(True, ref)]
        assert await store.lock_owner("turn:k") == "b"


async def _waits_for_a_lock(postgres_url: str) -> bool:
    conn = await asyncpg.connect(postgres_url)
    try:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    finally:
        await conn.close()
    return bool(waiting)
