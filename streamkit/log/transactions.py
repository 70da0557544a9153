"""Transactions on the embedded log: a coordinator with no server, as the groups of
``streamkit.log.groups`` have none.

Each transactional id has a state, kept durably where the log is (``log://``:
``<root>/__transactions/<id>/state.json``, changed under the flock of ``lock`` beside
it; ``memory://``: this process's memory). A process that calls
``init_producer(id)`` gets the id's producer id and a new epoch: the previous holder
of the id is fenced (its sends fail at every partition the new epoch reaches, its
commits fail at the coordinator), and a transaction it left open is aborted at once,
as Kafka's coordinator does on ``InitProducerId``.

A commit (or abort) is two-phase, so that a process killed in the middle leaves a
state someone can finish: the state becomes ``prepare_commit`` (durable) naming the
partitions and the group offsets, then each partition gets its marker, then the
offsets go to the groups, then the state becomes ``complete_commit``. Whoever takes
the id's lock next (the next ``init_producer``, or ``expire``) finishes a prepared
commit or abort. ``expire`` also aborts a transaction open longer than its
``transaction.timeout.ms`` (its producer is gone or stuck): a read_committed reader
held back by one calls it, so no server has to.

Zombie fencing (Kafka's KIP-447): the group offsets of a transaction carry the member
that consumed them; the commit is refused (and the transaction aborted) unless that
member still owns every one of those partitions in its group, so a worker that was
paused while its partitions moved to another cannot commit what it did meanwhile.
Until a transaction that holds offsets of a group has ended, ``pending_offsets`` names
their partitions (Kafka's unstable offsets).
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Protocol, TypedDict

from streamkit.errors import InvalidTxnState, ProducerFenced, TransactionAborted
from streamkit.log.groupstore import GroupStore, group_dir_name
from streamkit.log.partition import Partition
from streamkit.log.storage import write_atomic
from streamkit.log.txnindex import Producer
from streamkit.types import TopicPartition

#: Kafka's default ``transaction.timeout.ms``
DEFAULT_TIMEOUT_MS = 60_000
#: Kafka's ``transaction.max.timeout.ms``
MAX_TIMEOUT_MS = 900_000


class TxnState(TypedDict):
    """``state.json`` of a transactional id."""

    transactional_id: str
    producer_id: int
    epoch: int
    #: empty, ongoing, prepare_commit, prepare_abort, complete_commit, complete_abort
    state: str
    #: [topic, partition] of every partition the open transaction wrote to
    partitions: list[list[str | int]]
    #: group id -> {"member": member id or "", "offsets": [[topic, partition, offset]]}
    offsets: dict[str, dict[str, object]]
    started_ms: int
    timeout_ms: int


class TxnStore(Protocol):
    """Where the states of transactional ids live."""

    def locked(self, transactional_id: str, wait: bool = True
               ) -> AbstractContextManager[bool]:
        """Hold the id's lock (``wait=False``: only if free); yields whether held."""
        ...

    def read(self, transactional_id: str) -> TxnState | None: ...
    def write(self, state: TxnState) -> None: ...

    def ids(self) -> list[str]:
        """Every transactional id with a state."""
        ...

    def next_producer_id(self) -> int:
        """A producer id never handed out before in this log."""
        ...


class FileTxnStore:
    """States in ``<root>/__transactions`` (log://), shared by every process."""

    def __init__(self, root: Path) -> None:
        self.root = root / "__transactions"

    def _dir(self, transactional_id: str) -> Path:
        return self.root / group_dir_name(transactional_id)

    @contextmanager
    def _flock(self, path: Path, wait: bool) -> Iterator[bool]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)                    # (closing the fd lets go of the flock)

    def locked(self, transactional_id: str, wait: bool = True
               ) -> AbstractContextManager[bool]:
        return self._flock(self._dir(transactional_id) / "lock", wait)

    def read(self, transactional_id: str) -> TxnState | None:
        try:
            data = (self._dir(transactional_id) / "state.json").read_bytes()
        except FileNotFoundError:
            return None
        state: TxnState = json.loads(data)
        return state

    def write(self, state: TxnState) -> None:
        write_atomic(self._dir(state["transactional_id"]) / "state.json",
                     json.dumps(state).encode())

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        out = []
        for name in sorted(names):
            try:
                data = (self.root / name / "state.json").read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                continue
            out.append(json.loads(data)["transactional_id"])
        return out

    def next_producer_id(self) -> int:
        with self._flock(self.root / "producer-ids.lock", wait=True):
            path = self.root / "next-producer-id"
            try:
                pid = int(path.read_text())
            except FileNotFoundError:
                pid = 1000
            write_atomic(path, str(pid + 1).encode())
            return pid


class MemoryTxnStore:
    """States in this process's memory (memory://)."""

    def __init__(self) -> None:
        self._states: dict[str, TxnState] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._next = 1000

    @contextmanager
    def locked(self, transactional_id: str, wait: bool = True) -> Iterator[bool]:
        with self._guard:
            lock = self._locks.setdefault(transactional_id, threading.Lock())
        held = lock.acquire(blocking=wait)
        try:
            yield held
        finally:
            if held:
                lock.release()

    def read(self, transactional_id: str) -> TxnState | None:
        state = self._states.get(transactional_id)
        return None if state is None else json.loads(json.dumps(state))

    def write(self, state: TxnState) -> None:
        self._states[state["transactional_id"]] = json.loads(json.dumps(state))

    def ids(self) -> list[str]:
        return sorted(self._states)

    def next_producer_id(self) -> int:
        with self._guard:
            self._next += 1
            return self._next


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class TransactionCoordinator:
    """The transactions of one log, for the brokers of one process. ``partition``
    finds a partition of the log; ``group_store`` opens a consumer group's state."""

    def __init__(self, store: TxnStore, partition: Callable[[TopicPartition], Partition],
                 group_store: Callable[[str], GroupStore]) -> None:
        self._store = store
        self._partition = partition
        self._group_store = group_store

    def describe(self, transactional_id: str) -> TxnState | None:
        """The id's state as last written (None for an id never initialised): who
        holds it, and what its open transaction wrote to. Read without the lock, so
        it may be stale by the time it is looked at; for checks that the lock-taking
        calls repeat."""
        return self._store.read(transactional_id)

    # -- producers -----------------------------------------------------------------
    def init_producer(self, transactional_id: str, timeout_ms: int = DEFAULT_TIMEOUT_MS
                      ) -> Producer:
        """The id's producer id and a new epoch, fencing the previous holder; a
        transaction it left open is aborted, a prepared one finished."""
        if not isinstance(transactional_id, str) or not transactional_id:
            raise InvalidTxnState(f"transactional_id={transactional_id!r}: give a "
                                  "non-empty string")
        if not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
            raise InvalidTxnState(f"transaction.timeout.ms={timeout_ms}: must be from 1 "
                                  f"to {MAX_TIMEOUT_MS} ms (transaction.max.timeout.ms)")
        with self._store.locked(transactional_id):
            state = self._store.read(transactional_id)
            if state is None:
                state = TxnState(transactional_id=transactional_id,
                                 producer_id=self._store.next_producer_id(), epoch=-1,
                                 state="empty", partitions=[], offsets={},
                                 started_ms=0, timeout_ms=timeout_ms)
            # the new epoch first: the markers of a transaction left open carry it,
            # which fences its producer at each partition it wrote to
            state["epoch"] += 1
            self._finish(state, bump=False)
            state["state"] = "empty"
            state["timeout_ms"] = timeout_ms
            self._store.write(state)
            return state["producer_id"], state["epoch"]

    def _current(self, transactional_id: str, producer: Producer) -> TxnState:
        """The id's state, if ``producer`` still holds the id (under its lock)."""
        state = self._store.read(transactional_id)
        if state is None or state["producer_id"] != producer[0]:
            raise ProducerFenced(f"transactional id {transactional_id!r}: producer "
                                 f"{producer[0]} does not hold it (call "
                                 "init_transactions() first)")
        if state["epoch"] != producer[1]:
            raise ProducerFenced(
                f"transactional id {transactional_id!r}: epoch {producer[1]} is fenced "
                f"by epoch {state['epoch']} (a newer producer with the same "
                "transactional id, or its transaction timed out and was aborted)")
        return state

    def _ongoing(self, state: TxnState) -> None:
        if state["state"] != "ongoing":
            state["state"] = "ongoing"
            state["partitions"] = []
            state["offsets"] = {}
            state["started_ms"] = _now_ms()

    def add_partitions(self, transactional_id: str, producer: Producer,
                       tps: list[TopicPartition]) -> None:
        """Record that the open transaction writes to ``tps`` (before it does)."""
        with self._store.locked(transactional_id):
            state = self._current(transactional_id, producer)
            self._ongoing(state)
            known = {(t, p) for t, p in state["partitions"]}
            state["partitions"] += [[tp.topic, tp.partition] for tp in tps
                                    if (tp.topic, tp.partition) not in known]
            self._store.write(state)

    def add_offsets(self, transactional_id: str, producer: Producer, group_id: str,
                    offsets: dict[TopicPartition, int], member_id: str = "") -> None:
        """Commit ``offsets`` of ``group_id`` with the open transaction; ``member_id``
        (the group member that consumed them) fences a zombie at commit."""
        with self._store.locked(transactional_id):
            state = self._current(transactional_id, producer)
            self._ongoing(state)
            entry = state["offsets"].setdefault(group_id, {"member": member_id,
                                                           "offsets": []})
            entry["member"] = member_id
            merged = {(t, p): o for t, p, o in entry["offsets"]}  # type: ignore[attr-defined]
            merged.update({(tp.topic, tp.partition): o for tp, o in offsets.items()})
            entry["offsets"] = [[t, p, o] for (t, p), o in sorted(merged.items())]
            self._store.write(state)

    def end(self, transactional_id: str, producer: Producer, commit: bool) -> None:
        """Commit or abort the open transaction. A commit whose consuming member no
        longer owns its partitions is aborted instead (``TransactionAborted``)."""
        with self._store.locked(transactional_id):
            state = self._current(transactional_id, producer)
            if state["state"] != "ongoing":
                return                  # nothing was written: nothing to end
            # the groups stay locked from the zombie check until the offsets are
            # written: a member taking the partitions over (which takes the lock to
            # rebalance and to read the offsets) comes wholly before this commit,
            # which is then refused, or wholly after it, and starts where it ended
            with self._groups_locked(state if commit else None) as groups:
                problem = self._zombie(state, groups) if commit else None
                state["state"] = "prepare_abort" if problem or not commit \
                    else "prepare_commit"
                self._store.write(state)
                self._finish(state, bump=False, groups=groups)
                self._store.write(state)
        if problem:
            raise TransactionAborted(f"transactional id {transactional_id!r}: {problem}; "
                                     "the transaction was aborted")

    @contextmanager
    def _groups_locked(self, state: TxnState | None) -> Iterator[dict[str, GroupStore]]:
        """The stores of the groups whose offsets ``state`` commits, locked in the
        order of their ids (none for None)."""
        with ExitStack() as stack:
            groups: dict[str, GroupStore] = {}
            for group_id in sorted(state["offsets"]) if state is not None else []:
                store = groups[group_id] = self._group_store(group_id)
                stack.callback(store.close)
                stack.enter_context(store.locked())
            yield groups

    def _zombie(self, state: TxnState, groups: dict[str, GroupStore]) -> str | None:
        """Why the transaction's group offsets may not be committed (their member no
        longer owns one of the partitions), or None. ``groups``: their stores."""
        for group_id, entry in state["offsets"].items():
            member = entry["member"]
            if not member:
                continue
            store = groups[group_id]
            group = store.read_state()
            owned = {(t, p) for t, p in group["assignment"].get(str(member), [])}
            in_group = str(member) in group["members"]
            for t, p, _o in entry["offsets"]:  # type: ignore[attr-defined]
                if (t, p) in owned:
                    continue
                # a member giving partitions up in a rebalance commits them after the
                # new assignment was written and before it lets go of them: no other
                # member takes them until it does, as long as it is in the group
                if in_group and store.owner(TopicPartition(t, p)) == member:
                    continue
                return (f"member {member} of group {group_id!r} no longer owns "
                        f"{t}[{p}] (it was reassigned: this member is a zombie)")
        return None

    def _finish(self, state: TxnState, bump: bool,
                groups: dict[str, GroupStore] | None = None) -> None:
        """Complete what the state says is under way (under the id's lock): an open
        transaction is aborted (with the epoch bumped when ``bump``, which fences its
        producer at every partition it wrote to), a prepared one is finished, its
        groups locked throughout (``groups``: their stores, locked by the caller)."""
        kind = state["state"]
        if kind == "ongoing":
            if bump:
                state["epoch"] += 1
            kind = state["state"] = "prepare_abort"
            self._store.write(state)
        if kind not in ("prepare_commit", "prepare_abort"):
            return
        commit = kind == "prepare_commit"
        if groups is None and commit:
            with self._groups_locked(state) as groups:
                return self._finish(state, bump, groups)
        producer = (state["producer_id"], state["epoch"])
        for topic, partition in state["partitions"]:
            tp = TopicPartition(str(topic), int(partition))
            log = self._partition(tp)
            log.write_marker(producer, commit)
            log.sync()
        if commit:
            assert groups is not None
            for group_id, entry in state["offsets"].items():
                groups[group_id].write_offsets(
                    {TopicPartition(t, p): o
                     for t, p, o in entry["offsets"]})  # type: ignore[attr-defined]
        state["state"] = "complete_commit" if commit else "complete_abort"
        state["partitions"] = []
        state["offsets"] = {}

    def expire(self) -> int:
        """Abort every transaction open past its timeout and finish every prepared
        one whose process died; returns how many. Ids whose lock is held are left."""
        now = _now_ms()
        return sum(self._settle(transactional_id, now)[1]
                   for transactional_id in self._store.ids())

    def _settle(self, transactional_id: str, now: int) -> tuple[TxnState | None, bool]:
        """``expire`` for one id: its state after, and whether it ended a transaction.
        With its lock held by someone else, its state as last written."""
        with self._store.locked(transactional_id, wait=False) as held:
            state = self._store.read(transactional_id)
            if not held or state is None:
                return state, False
            kind = state["state"]
            late = kind == "ongoing" and now - state["started_ms"] > state["timeout_ms"]
            if not late and kind not in ("prepare_commit", "prepare_abort"):
                return state, False
            self._finish(state, bump=True)
            self._store.write(state)
            return state, True

    def pending_offsets(self, group_id: str) -> set[TopicPartition]:
        """The partitions of ``group_id`` whose offsets a transaction holds that is not
        complete (open, or committing or aborting now): their committed offset may
        change when it ends (Kafka's unstable offsets, KIP-447). A transaction past its
        timeout, or left prepared by a process that died, is ended first, so that it
        holds them no longer. Reads the state of every transactional id: it is asked
        when a consumer takes partitions, not in the commit's path."""
        now = _now_ms()
        pending: set[TopicPartition] = set()
        for transactional_id in self._store.ids():
            state, _ = self._settle(transactional_id, now)
            if state is None or state["state"] not in ("ongoing", "prepare_commit",
                                                       "prepare_abort"):
                continue
            entry = state["offsets"].get(group_id)
            for t, p, _o in entry["offsets"] if entry else []:  # type: ignore[attr-defined]
                pending.add(TopicPartition(str(t), int(p)))
        return pending
