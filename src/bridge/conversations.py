"""Conversations: chat thread ↔ upstream task, one turn at a time, exactly-once, recovery.

Adapters derive a `ConversationKey`, then run `async with conversations.turn(key,
message, ...) as turn: async for event in turn: ...`. The service takes the key's
leased lock (across replicas), records the turn in the in-flight ledger, invokes
with the adapter's `source` and the user's identity, maps the key to the task id
as soon as `task_created` reveals it, and drops the record once the adapter has
delivered the answer. Turns whose holder died are finished by `recover()`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel, SecretStr

from bridge import errors
from bridge._recovery import Deliver, Recovery
from bridge._turns import ConversationKey, Message, Turn, TurnObserver
from bridge.client import AgentClient, Run
from bridge.config import ConversationsConfig
from bridge.events import TaskCreated
from bridge.handles import HandleSealer
from bridge.logs import log_context, update_log_context
from bridge.models import Task
from bridge.stores import InFlightTurn, PlatformMessage, SessionStore, ThreadRef
from bridge.tracing import set_turn_attribute, turn_span

if TYPE_CHECKING:
    from bridge.metrics import Metrics

__all__ = [
    "ConversationKey",
    "Conversations",
    "Deliver",
    "Message",
    "Policy",
    "Turn",
    "TurnObserver",
]

logger = logging.getLogger(__name__)

Policy = Literal["queue", "coalesce", "interrupt"]
_HANDLE_SECRET = "handle-secret"
MESSAGE_LINK_TTL = 90 * 86_400.0
"""How long a posted answer's link to its conversation is kept by default (90 days)."""
MAPPING_REFRESH = 60.0
"""A continued thread's mapping is written again (its retention restarting) at most this
often; turns in between leave it as it is."""


class _Observer:
    """The conversations service's side of a turn: the ledger, the thread map, metrics and
    lease renewal."""

    def __init__(self, service: Conversations) -> None:
        self.service = service

    async def recorded(self, turn: Turn) -> None:
        if turn.is_recorded:
            await self.service.store.record_turn(turn.record)

    async def created(self, turn: Turn, event: TaskCreated) -> None:
        await self.service._on_created(turn, event)

    def first_text(self, turn: Turn) -> None:
        self.service._observe_first_text(turn)

    def ended(self, turn: Turn, status: str, error: BaseException | None = None) -> None:
        self.service._observe_end(turn, status, error)

    async def progressed(self, turn: Turn) -> None:
        await self.service._renew_held(only_due=True)


@dataclass(slots=True)
class _LocalLock:
    """A key's in-process turn lock and how many turns hold or await it."""

    lock: anyio.Lock = field(default_factory=anyio.Lock)
    users: int = 0


class Conversations:
    """The conversations service shared by every adapter of a process."""

    def __init__(
        self,
        client: AgentClient,
        store: SessionStore,
        config: ConversationsConfig | None = None,
        *,
        replica_id: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.store = store
        self.config = config or ConversationsConfig()
        self.replica_id = replica_id or f"replica-{uuid.uuid4().hex[:12]}"
        secret = self.config.handle_secret or SecretStr(secrets.token_urlsafe(32))
        self.handles = HandleSealer(secret, ttl=self.config.handle_ttl)
        # Per-key locks live while some turn of the key holds or waits for them.
        self._local_locks: dict[str, _LocalLock] = {}
        self._pending: dict[str, list[tuple[str, Message]]] = {}
        self._running: dict[str, Turn] = {}
        self._held: dict[str, float] = {}
        self.draining = False
        self._idle: anyio.Event | None = None
        self._next_renewal = 0.0
        self._observer = _Observer(self)
        self.recovery = Recovery(
            client,
            store,
            self.config,
            replica_id=self.replica_id,
            is_running=lambda key: key in self._running,
            metrics=metrics,
        )

    # -- mapping -----------------------------------------------------------

    async def thread_for(self, key: ConversationKey) -> ThreadRef | None:
        ref = await self.store.get_thread(str(key))
        return ref if ref and ref.task_id else None

    async def agent_for(self, key: ConversationKey) -> str | None:
        """The agent chosen for the key (by `choose_agent` or its thread), if any."""
        ref = await self.store.get_thread(str(key))
        return ref.agent_id if ref else None

    async def choose_agent(
        self, key: ConversationKey, agent_id: str, owner: str | None = None
    ) -> None:
        """Switch the key to another agent: the next message starts a fresh thread."""
        await self.store.put_thread(str(key), ThreadRef(task_id="", agent_id=agent_id, owner=owner))

    async def reset(
        self, key: ConversationKey, *, scope: Literal["thread", "space"] = "thread"
    ) -> int:
        """Forget the key's thread (or every thread of its space); returns how many."""
        if scope == "space":
            return await self.store.delete_threads(key.space_prefix)
        return int(await self.store.delete_thread(str(key)))

    async def continue_with(
        self, key: ConversationKey, handle: str, principal: str | None
    ) -> ThreadRef:
        """Point the key at the thread a handle names.

        Raises:
            HandleError: forged, malformed or expired.
            OwnershipError: the handle belongs to someone else.
        """
        sealed = self.handles.open(handle, principal=principal)
        ref = ThreadRef(task_id=sealed.task_id, agent_id=sealed.agent_id, owner=sealed.owner)
        await self.store.put_thread(str(key), ref)
        return ref

    async def load_handle_secret(self) -> None:
        """Seal handles with the configured secret, else with one created once in the store
        (so handles outlive restarts and work on every replica). After a rotation, handles
        sealed with a previous secret (listed, or the store's) open for `handle_rotation_grace`
        from the first time any replica saw the new one.

        Raises:
            StoreError: the store failed.
        """
        config = self.config
        stored = SecretStr(
            await self.store.ensure_secret(_HANDLE_SECRET, secrets.token_urlsafe(32))
        )
        current = config.handle_secret or stored
        previous = [*config.previous_handle_secrets, *([stored] if config.handle_secret else [])]
        previous = [old for old in previous if old.get_secret_value() != current.get_secret_value()]
        until = 0.0
        if previous:
            digest = hashlib.sha256(current.get_secret_value().encode()).hexdigest()[:32]
            first_seen = await self.store.ensure_secret(
                f"{_HANDLE_SECRET}-since:{digest}", repr(time.time())
            )
            until = float(first_seen) + config.handle_rotation_grace
        self.handles = HandleSealer(
            current, ttl=config.handle_ttl, previous=previous, previous_until=until
        )

    def seal(self, agent_id: str, task_id: str, owner: str | None = None) -> str:
        return self.handles.seal(agent_id, task_id, owner)

    async def link_message(
        self, message: PlatformMessage, key: ConversationKey, *, ttl: float = MESSAGE_LINK_TTL
    ) -> None:
        """Remember that `message` (an answer the bridge posted) belongs to `key`'s
        conversation, so a reply to it continues that conversation; kept `ttl` seconds."""
        await self.store.put_record(f"message:{message}", str(key), ttl)

    async def conversation_of(self, message: PlatformMessage) -> ConversationKey | None:
        """The conversation `message` was linked to (`link_message`), if any."""
        found = await self.store.get_record(f"message:{message}")
        return ConversationKey.parse(found) if found else None

    async def first_delivery(self, delivery_id: str) -> bool:
        """True the first time a platform delivery id is seen (Slack event_id, update_id)."""
        return await self.store.mark_seen(delivery_id, self.config.dedupe_ttl)

    def waiting(self, key: ConversationKey) -> int:
        """Messages of this process waiting for the key's running turn to end (a running
        turn has already taken its own messages out of the queue)."""
        return len(self._pending.get(str(key), ()))

    async def requester(self, key: ConversationKey) -> str | None:
        """Who the key's conversation answers to: the running turn's principal, else the
        principal that owns the mapped thread."""
        turn = self._running.get(str(key))
        if turn is not None:
            return turn.principal
        ref = await self.store.get_thread(str(key))
        return ref.owner if ref else None

    def running_task(self, key: ConversationKey) -> str | None:
        turn = self._running.get(str(key))
        return turn.task_id if turn else None

    async def stop(self, key: ConversationKey) -> Task | None:
        """Stop the task of the key's running turn (this replica's, else the mapped thread)."""
        task_id = self.running_task(key)
        if task_id is None:
            ref = await self.thread_for(key)
            if ref is None:
                return None
            task_id = ref.task_id
        return await self.client.stop_task(task_id)

    # -- turns ---------------------------------------------------------------

    @asynccontextmanager
    async def turn(
        self,
        key: ConversationKey,
        message: Message,
        *,
        agent_id: str,
        source: str,
        policy: Policy | None = None,
        on_queued: Callable[[], Awaitable[None]] | None = None,
        recorded: bool = True,
        one_shot: bool = False,
    ) -> AsyncIterator[Turn]:
        """Run one turn for the key, one at a time across replicas.

        `recorded=False`: no in-flight record, for an adapter that cannot deliver a turn
        after a crash (it has no `deliver`; its caller is gone with the process).
        `one_shot=True` (implies not recorded): the key is this turn's alone and its new
        thread is never continued by key, so there is no turn lock, thread lookup or
        mapping: only the upstream run (its task id is `turn.task_id`).

        Raises (while iterating the turn): `RunFailedError`, `UpstreamError`.
        """
        policy = policy or self.config.policy
        name = str(key)
        if self.draining:
            await self._park(key, message, agent_id=agent_id, source=source)
        if one_shot:
            turn = self._new_turn(key, [message], None, agent_id=agent_id, source=source)
            turn.is_recorded = turn.is_mapped = False
            async with self._running_turn(turn, message):
                yield turn
            return
        ticket = uuid.uuid4().hex
        self._pending.setdefault(name, []).append((ticket, message))
        local = self._local_locks.setdefault(name, _LocalLock())
        local.users += 1
        busy = False

        async def wait_announced() -> None:
            nonlocal busy
            if not busy:
                busy = True
                if self.metrics:
                    self.metrics.queued.inc()
                if policy == "interrupt":
                    await self._interrupt(key)
                if on_queued is not None:
                    await on_queued()

        try:
            if local.lock.locked():
                await wait_announced()
            received = time.monotonic()
            async with local.lock, self._distributed_lock(name, wait_announced) as ref:
                if busy and self.metrics:
                    self.metrics.queued.dec()
                batch = self._take(name, ticket, coalesce=policy == "coalesce")
                turn = self._new_turn(key, batch, ref, agent_id=agent_id, source=source)
                turn.queued, turn.received_at = busy, received
                turn.is_recorded = recorded
                if not batch:
                    turn.merged = True
                    yield turn
                    return
                async with self._running_turn(turn, batch[-1]):
                    yield turn
        finally:
            self._forget(name, ticket)
            local.users -= 1
            if local.users == 0:
                del self._local_locks[name]

    @asynccontextmanager
    async def _running_turn(self, turn: Turn, message: Message) -> AsyncIterator[None]:
        """Run `turn` upstream while the block runs; commit its delivery when it ends."""
        record = turn.record
        name = record.key
        self._running[name] = turn
        self._observe_start(turn)
        try:
            with (
                turn_span(key=name, agent=record.agent_id, source=record.source),
                log_context(
                    key=name, agent=record.agent_id, source=record.source, turn=record.turn_id
                ),
            ):
                async with self._open_run(turn, message) as run:
                    turn.run = run
                    try:
                        yield
                    except (errors.UpstreamError, errors.PlatformError):
                        raise
                    except Exception as exc:
                        # Not a platform outage: counted, so recovery gives up on
                        # this record after max_delivery_attempts instead of looping.
                        await self.count_failure(turn.record, exc, stage="deliver")
                        raise
                await self._finish(turn)
        finally:
            self._running.pop(name, None)
            if not self._running and self._idle is not None:
                self._idle.set()
            if self.metrics:
                self.metrics.inflight.dec()

    async def _park(
        self, key: ConversationKey, message: Message, *, agent_id: str, source: str
    ) -> None:
        """While draining, record a new message for recovery instead of starting it, and wait
        for shutdown: the next start (or another replica) runs and delivers it."""
        ref = await self.store.get_thread(str(key))
        turn = self._new_turn(key, [message], ref, agent_id=agent_id, source=source)
        await self.store.record_turn(turn.record)
        logger.info("draining: message for %s left to recovery", key)
        await anyio.sleep_forever()

    async def drain(self) -> None:
        """Take no new turns; return once the running ones have finished."""
        self.draining = True
        while self._running:
            self._idle = anyio.Event()
            await self._idle.wait()

    # -- metrics -------------------------------------------------------------

    def _observe_start(self, turn: Turn) -> None:
        if self.metrics:
            self.metrics.inflight.inc()
            self.metrics.turns_started.labels(turn.record.source, turn.record.agent_id).inc()

    def _observe_first_text(self, turn: Turn) -> None:
        if self.metrics and turn.first_text_at is not None:
            self.metrics.first_text.labels(turn.record.source).observe(
                turn.first_text_at - turn.received_at
            )

    def _observe_end(self, turn: Turn, status: str, error: BaseException | None = None) -> None:
        if self.metrics:
            record = turn.record
            self.metrics.turns_finished.labels(record.source, record.agent_id, status).inc()
            self.metrics.turn_duration.labels(record.source).observe(
                time.monotonic() - turn.received_at
            )
            if error is not None:
                self.metrics.upstream_error(error)

    def _take(self, name: str, ticket: str, *, coalesce: bool) -> list[Message]:
        pending = self._pending.get(name, [])
        if coalesce:
            # Only one sender's messages merge: another user's message is never sent
            # upstream as this sender's.
            mine = next((message for held, message in pending if held == ticket), None)
            if mine is None:
                return []  # merged into an earlier coalesced turn
            kept = [(h, m) for h, m in pending if m.principal != mine.principal]
            taken = [m for _, m in pending if m.principal == mine.principal]
            pending[:] = kept
            return taken
        for index, (held, message) in enumerate(pending):
            if held == ticket:
                del pending[index]
                return [message]
        return []  # merged into an earlier coalesced turn

    def _forget(self, name: str, ticket: str) -> None:
        pending = self._pending.get(name)
        if pending is not None:
            pending[:] = [entry for entry in pending if entry[0] != ticket]
            if not pending:
                self._pending.pop(name, None)

    def _new_turn(
        self,
        key: ConversationKey,
        batch: list[Message],
        ref: ThreadRef | None,
        *,
        agent_id: str,
        source: str,
    ) -> Turn:
        thread = ref.task_id if ref and ref.task_id and ref.agent_id == agent_id else None
        text = "\n\n".join(message.text for message in batch)
        last = batch[-1] if batch else Message(text="")
        record = InFlightTurn(
            turn_id=uuid.uuid4().hex,
            key=str(key),
            adapter=key.adapter,
            agent_id=agent_id,
            text=text,
            source=source,
            user=last.user.model_dump(exclude_none=True) if last.user else None,
            thread=thread,
            reply=_reply_fields(last.reply),
            holder=self.replica_id,
        )
        turn = Turn(self._observer, record, thread, last.principal)
        turn.previous = ref
        return turn

    @asynccontextmanager
    async def _open_run(self, turn: Turn, message: Message) -> AsyncIterator[Run]:
        # Recorded before the invoke: after a crash, recovery can ask the platform whether
        # this turn started instead of guessing.
        checkpoint = await self.client.checkpoint(turn.record.text, thread=turn.thread)
        if turn.is_recorded:
            turn.record = turn.record.model_copy(
                update={
                    "new_thread_id": checkpoint.task_id if checkpoint.is_new else None,
                    "thread_messages": checkpoint.baseline,
                }
            )
            await self.store.record_turn(turn.record)
        async with self.client.stream(
            turn.record.agent_id,
            turn.record.text,
            thread=turn.thread,
            files=message.files,
            user=message.user,
            source=turn.record.source,
            options=message.options,
            stop_on_cancel=False,
            checkpoint=checkpoint,
        ) as run:
            yield run

    async def _on_created(self, turn: Turn, event: TaskCreated) -> None:
        task_id = event.task.id
        update_log_context(task_id=task_id)
        set_turn_attribute("bridge.task_id", task_id)
        record = turn.record
        changed = record.task_id != task_id
        if changed:
            turn.record = record = record.model_copy(update={"task_id": task_id})
        ref = _new_mapping(turn, task_id) if turn.is_mapped else None
        if changed and turn.is_recorded:  # the record and the mapping in one step
            await self.store.record_turn(record, thread=ref)
        elif ref is not None:
            await self.store.put_thread(record.key, ref)

    async def _finish(self, turn: Turn) -> None:
        """The adapter rendered the final answer: commit the delivery, drop the record and
        release the turn lock, in one step."""
        if not turn.is_recorded:
            return
        lock = f"turn:{turn.record.key}"
        renewed = self._held.pop(lock, None)
        held = lock if renewed is not None else None
        try:
            await self.store.finish_turn(turn.record.turn_id, lock=held, owner=self.replica_id)
        except BaseException:
            if renewed is not None:  # not known to be released: `_distributed_lock` does it
                self._held[lock] = renewed
            raise

    async def _interrupt(self, key: ConversationKey) -> None:
        try:
            await self.stop(key)
        except errors.UpstreamError as exc:
            logger.warning("could not interrupt the running turn of %s: %s", key, exc)

    @asynccontextmanager
    async def _distributed_lock(
        self, name: str, on_wait: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[ThreadRef | None]:
        """Hold the key's leased lock, yielding the key's mapping read under it; `heartbeat()`
        and the turn's own events renew it. `_finish` may release it (out of `_held`)."""
        lock = f"turn:{name}"
        delay = 0.02
        while True:
            taken, ref = await self.store.acquire_lock_and_get_thread(
                lock, self.replica_id, self.config.lock_lease, name
            )
            if taken:
                break
            await on_wait()
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.5)
        self._held[lock] = time.monotonic()
        try:
            yield ref
        finally:
            if self._held.pop(lock, None) is not None:
                with anyio.CancelScope(shield=True):
                    await self.store.release_lock(lock, self.replica_id)

    async def _renew_held(self, *, only_due: bool = False) -> None:
        lease = self.config.lock_lease
        now = time.monotonic()
        if only_due and now < self._next_renewal:
            return  # the per-event fast path: nothing is due yet
        self._next_renewal = now + lease / 6
        for lock, renewed in list(self._held.items()):
            if only_due and now - renewed < lease / 3:
                continue
            if await self.store.renew_lock(lock, self.replica_id, lease):
                if lock in self._held:
                    self._held[lock] = now
            elif lock in self._held:  # not released meanwhile by its own turn
                logger.error("lost the turn lock %s; another replica may start a turn", lock)

    # -- liveness and recovery -------------------------------------------------

    async def recover(self, adapter: str, deliver: Deliver) -> int:
        """Finish every recorded turn of `adapter` whose holder died (`Recovery.recover`)."""
        return await self.recovery.recover(adapter, deliver)

    async def run_recovery(
        self,
        adapter: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Recover `adapter`'s orphaned turns at start-up, then periodically, until cancelled."""
        await self.recovery.run(adapter, deliver, task_status=task_status)

    async def count_failure(self, record: InFlightTurn, exc: BaseException, *, stage: str) -> None:
        """Count a failure to render or deliver `record`; quarantined at the limit."""
        await self.recovery.count_failure(record, exc, stage=stage)

    async def heartbeat(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep this replica's liveness lease; recovery treats turns of dead replicas as orphans."""
        lease = self.config.lock_lease
        await self.store.acquire_lock(f"replica:{self.replica_id}", self.replica_id, lease)
        task_status.started()
        while True:
            await anyio.sleep(lease / 3)
            await self.store.acquire_lock(f"replica:{self.replica_id}", self.replica_id, lease)
            await self._renew_held()


def _new_mapping(turn: Turn, task_id: str) -> ThreadRef | None:
    """The mapping to write now that the turn's task is `task_id`; None when the key is
    mapped to it already and was written less than `MAPPING_REFRESH` ago."""
    existing, agent_id = turn.previous, turn.record.agent_id
    if (
        existing is not None
        and existing.task_id == task_id
        and existing.agent_id == agent_id
        and time.time() - existing.updated_at < MAPPING_REFRESH
    ):
        return None  # a continued thread, mapped a moment ago: the write would say nothing new
    owner = existing.owner if existing and existing.task_id == task_id else turn.principal
    created_at = existing.created_at if existing else time.time()
    return ThreadRef(task_id=task_id, agent_id=agent_id, owner=owner, created_at=created_at)


def _reply_fields(reply: dict[str, Any] | BaseModel) -> dict[str, Any]:
    return reply.model_dump(mode="json") if isinstance(reply, BaseModel) else dict(reply)
