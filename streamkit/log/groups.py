"""Consumer groups of the embedded log, coordinated through shared state with no server.

How a member lives (see streamkit.log.groupstore for the files):

- joining: under the group lock, drop members found dead, add itself, bump the
  generation and write a new assignment (range assignor per topic, members sorted by
  id, as Kafka's RangeAssignor);
- in every ``poll``: heartbeat (every ``session_timeout / 3`` at most, 1 s at most), check
  whether other members died (their member-file lock is free, or no heartbeat for
  ``session_timeout``) and if so rebalance, and follow a new generation written by anyone:
  ``on_revoke`` and release the partitions taken away, then take the new ones;
- a partition is read only while holding its ownership lock. A partition moved to us is
  taken only once its previous owner released it, so two members never read one
  partition at once, even mid-rebalance; except from a member dropped from the group
  (no heartbeat for ``session_timeout``) that still holds it, a stopped or hung
  process: its partitions are taken over at once (decision 160), as Kafka's
  coordinator reassigns them, and what it commits when it wakes is refused (its
  transactions' commits by the coordinator's zombie check). ``on_assign``/``on_revoke``
  get the partitions that changed (incremental, as Kafka's cooperative protocol), not
  the whole set.
"""
from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from streamkit.errors import (
    CorruptRecord,
    InvalidConfig,
    OffsetOutOfRange,
    UnknownTopic,
)
from streamkit.log.groupstore import GroupState, GroupStore
from streamkit.log.watch import AppendWatch
from streamkit.types import Message, TopicPartition

log = logging.getLogger("streamkit.log")

RebalanceCallback = Callable[[list[TopicPartition]], None]

#: how long a partition read to its end is skipped by polls without an event for it
DRY_SECONDS = 1.0


class GroupBroker(Protocol):
    """What a member needs of the broker of its group (``LogBroker`` is one)."""

    def create_topic(self, name: str, *, exist_ok: bool = True) -> None: ...
    def partition_count(self, name: str) -> int | None: ...
    def offsets(self, tp: TopicPartition) -> tuple[int, int]: ...

    def fetch(self, tp: TopicPartition, offset: int, max_records: int = 1000,
              timeout: float = 0.0, isolation_level: str = "read_uncommitted"
              ) -> list[Message]: ...

    def append_watch(self) -> AppendWatch: ...

    def settle_transactions(self) -> None:
        """Finish the commits (and aborts) that producers which died left prepared."""
        ...


def range_assignment(members: dict[str, Sequence[str]],
                     partitions: dict[str, int]) -> dict[str, list[list[str | int]]]:
    """Kafka's range assignor: per topic, consecutive partitions to sorted members."""
    out: dict[str, list[list[str | int]]] = {m: [] for m in members}
    for topic in sorted(partitions):
        subscribers = sorted(m for m, topics in members.items() if topic in topics)
        if not subscribers:
            continue
        per, extra = divmod(partitions[topic], len(subscribers))
        start = 0
        for i, member in enumerate(subscribers):
            count = per + (1 if i < extra else 0)
            out[member].extend([topic, p] for p in range(start, start + count))
            start += count
    return out


class LogGroupConsumer:
    """One member of a consumer group on the embedded log (the GroupConsumer protocol)."""

    def __init__(self, broker: GroupBroker, store: GroupStore, group_id: str,
                 topics: Sequence[str], *,
                 auto_offset_reset: str = "earliest", enable_auto_commit: bool = False,
                 auto_commit_interval: float = 5.0, session_timeout: float = 10.0,
                 on_assign: RebalanceCallback | None = None,
                 on_revoke: RebalanceCallback | None = None,
                 isolation_level: str = "read_uncommitted",
                 on_lost: RebalanceCallback | None = None) -> None:
        if auto_offset_reset not in ("earliest", "latest"):
            raise InvalidConfig(f"auto_offset_reset={auto_offset_reset!r}: use earliest "
                                "or latest")
        self.group_id = group_id
        self.member_id = f"m{time.time_ns() // 1000:x}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.topics = list(dict.fromkeys(topics))
        self._broker = broker
        self._store = store
        self._reset = auto_offset_reset
        self._auto_commit = enable_auto_commit
        self._commit_interval = auto_commit_interval
        self._session_timeout = session_timeout
        self._heartbeat_interval = min(session_timeout / 3, 1.0)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._on_lost = on_lost or on_revoke
        #: read_committed: no record of an aborted or open transaction
        self.isolation_level = isolation_level
        self._generation = -1
        self._state_version: object = None
        self._positions: dict[TopicPartition, int] = {}     # owned partitions
        self._pending: set[TopicPartition] = set()           # assigned, not yet free
        self._paused: set[TopicPartition] = set()
        self._last_committed: dict[TopicPartition, int] = {}
        self._next_heartbeat = 0.0
        self._next_take = 0.0
        self._next_commit = time.monotonic() + auto_commit_interval
        self._rr = 0
        self._closed = False
        #: what a caught-up member waits on (set up at its first wait; decision 111)
        self._watch: AppendWatch | None = None
        #: partitions read to their end and not appended to since (the watch says):
        #: a poll skips them (each idle partition read costs a few stat calls)
        self._dry: set[TopicPartition] = set()
        self._dry_until = 0.0
        for topic in self.topics:
            broker.create_topic(topic, exist_ok=True)
        store.register(self.member_id)
        self._join()

    # -- membership ------------------------------------------------------------------
    def _join(self) -> None:
        with self._store.locked():
            state = self._store.read_state()
            self._drop_dead(state)
            state["members"][self.member_id] = {"topics": self.topics}
            self._rebalance(state)
        self._follow(state)

    def _drop_dead(self, state: GroupState) -> bool:
        """Remove members that died from ``state`` (call under the group lock)."""
        dead = [m for m in state["members"] if m != self.member_id and
                not self._store.is_alive(m, self._session_timeout)]
        for member in dead:
            log.info("group %s: member %s is gone (no lock, or no heartbeat for %.1fs)",
                     self.group_id, member, self._session_timeout)
            del state["members"][member]
            self._store.forget(member)
        return bool(dead)

    def _rebalance(self, state: GroupState) -> None:
        """New generation and assignment in ``state``, written (under the group lock)."""
        topics = {t for info in state["members"].values() for t in info["topics"]}
        counts = {t: self._broker.partition_count(t) or 0 for t in topics}
        state["generation"] += 1
        state["assignment"] = range_assignment(
            {m: info["topics"] for m, info in state["members"].items()}, counts)
        self._store.write_state(state)
        log.info("group %s: generation %d, %d member(s)", self.group_id,
                 state["generation"], len(state["members"]))

    def _check_members(self) -> None:
        state = self._store.read_state()
        others = [m for m in state["members"] if m != self.member_id]
        if all(self._store.is_alive(m, self._session_timeout) for m in others):
            return
        with self._store.locked():
            state = self._store.read_state()
            if self._drop_dead(state):
                self._rebalance(state)

    def _follow(self, state: GroupState) -> None:
        """Move to the generation in ``state``: give up what we lost, take what we got."""
        if self.member_id not in state["members"]:
            # the others decided we were dead (we did not poll for session_timeout)
            log.warning("group %s: member %s was removed from the group; rejoining",
                        self.group_id, self.member_id)
            # (lost, not given up: their new owner may be reading them already, so
            # no auto commit of them, and on_lost instead of on_revoke)
            self._revoke(set(self._positions) | self._pending, lost=True)
            self._store.unregister(self.member_id)     # our member file was removed
            self._store.register(self.member_id)
            self._join()
            return
        self._generation = state["generation"]
        target = {TopicPartition(str(t), int(p))           # [topic, partition] in JSON
                  for t, p in state["assignment"].get(self.member_id, [])}
        self._revoke((set(self._positions) | self._pending) - target)
        self._pending |= target - set(self._positions)
        self._take_pending()

    def _revoke(self, tps: set[TopicPartition], commit: bool = True,
                lost: bool = False) -> None:
        owned = sorted(tp for tp in tps if tp in self._positions)
        self._pending -= tps
        if not owned:
            return
        if self._auto_commit and commit and not lost:
            self._commit_positions(owned)
        callback = self._on_lost if lost else self._on_revoke
        if callback is not None:
            callback(owned)
        for tp in owned:
            del self._positions[tp]
            self._paused.discard(tp)
            self._dry.discard(tp)
        self._release(owned)

    def _take_pending(self) -> None:
        taken = self._acquire_by_partition_number()
        if not taken:
            return
        try:
            if self.isolation_level == "read_committed":
                # offsets a dead producer's prepared commit holds are the group's
                # (Kafka's consumers ask for stable offsets, KIP-447)
                self._broker.settle_transactions()
            with self._store.locked():      # (not in the middle of a commit)
                committed = self._store.read_offsets()
            starts = {tp: self._start_position(tp, committed.get(tp)) for tp in taken}
        except BaseException:
            self._release(taken)   # flocks held but never read would block the next owner
            raise
        for tp in taken:
            self._pending.discard(tp)
            self._positions[tp] = starts[tp]
            self._last_committed[tp] = committed.get(tp, -1)
        if self._on_assign is not None:
            self._on_assign(taken)

    def _acquire_by_partition_number(self) -> list[TopicPartition]:
        """Pending partitions acquired, all those of one partition number or none.

        A table partition (its RocksDB store) goes with the partition number, whichever
        topic brought it: mid-rebalance, a member still on the old generation and one
        on the new could otherwise each take a different topic's partition N and both
        open table partition N. Taking each number's partitions in one fixed order and
        giving them back on the first refusal means one member gets them all. (Members
        of one generation hold the same numbers of every topic only when they subscribe
        to the same, equally partitioned topics, as tables require anyway.)
        """
        taken: list[TopicPartition] = []
        got: list[TopicPartition] = []
        by_number = sorted(self._pending, key=lambda tp: (tp.partition, tp.topic))
        try:
            for _number, tps in itertools.groupby(by_number, key=lambda tp: tp.partition):
                got = []
                for tp in tps:
                    if not self._acquire(tp):
                        self._release(got)
                        break
                    got.append(tp)
                else:
                    taken += got
        except BaseException:
            self._release(taken + got)
            raise
        return sorted(taken)

    def _acquire(self, tp: TopicPartition) -> bool:
        """Take ownership of ``tp``: once its holder let go, or at once if the holder
        is no longer a member of the group (it was dropped for missing heartbeats
        while its process, stopped or hung, still holds the partition; decision 160).
        That holder is a zombie: whatever it commits later is refused."""
        if self._store.acquire(tp, self.member_id):
            return True
        holder = self._store.owner(tp)
        if holder is None or holder == self.member_id or \
                holder in self._store.read_state()["members"]:
            return False                # it lets go once it follows the generation
        with self._store.locked():
            if holder in self._store.read_state()["members"]:
                return False            # (it rejoined)
            if self._store.acquire(tp, self.member_id):
                return True
            if self._store.owner(tp) != holder:
                return False            # someone else took it over first
            log.warning("group %s: %s[%d] is still held by %s, which left the group (no "
                        "heartbeat for %.1fs: a stopped or hung process); taking it over",
                        self.group_id, tp.topic, tp.partition, holder,
                        self._session_timeout)
            self._store.take_over(tp, self.member_id)
            return True

    def _release(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._store.release(tp, self.member_id)

    def _start_position(self, tp: TopicPartition, committed: int | None) -> int:
        start, end = self._broker.offsets(tp)
        if committed is None or committed < start or committed > end:
            return start if self._reset == "earliest" else end
        return committed

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self._heartbeat_interval
            self._store.heartbeat(self.member_id)
            self._check_members()
        version = self._store.state_version()
        if version != self._state_version:
            self._state_version = version
            state = self._store.read_state()
            if state["generation"] != self._generation or \
                    self.member_id not in state["members"]:
                self._follow(state)
        if self._pending and now >= self._next_take:
            # waiting for a previous owner to let go: retry every few ms, not every poll
            self._next_take = now + 0.005
            self._take_pending()
        if self._auto_commit and now >= self._next_commit:
            self._next_commit = now + self._commit_interval
            self._commit_positions(list(self._positions))

    # -- the GroupConsumer protocol ----------------------------------------------------
    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while True:
            watch = self._watch
            if watch is not None:
                # take the events before reading: an append after this wakes again
                touched = watch.clear()
                if touched is None or time.monotonic() >= self._dry_until:
                    # (and once a second read everything, whatever the watch says)
                    self._dry.clear()
                    self._dry_until = time.monotonic() + DRY_SECONDS
                elif touched:
                    self._dry -= touched
            self._housekeeping()
            messages = self._fetch(max_records)
            if messages:
                return messages
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return messages
            _fd, seconds = self.prepare_wait()
            assert self._watch is not None
            self._watch.wait(min(remaining, seconds))

    def prepare_wait(self) -> tuple[int | None, float]:
        """Get ready to wait for records after a ``poll`` that returned none: (fd,
        seconds). Wait until ``fd`` is readable (an owned partition was appended to,
        or the group changed), at most ``seconds`` (the group's next heartbeat or
        auto-commit, a partition still to take), then ``poll``. ``seconds`` is 0 when a
        watch was just set up (``poll`` again at once: records may have come before
        it); ``fd`` is None where the platform gives no descriptor (sleep)."""
        watch = self._watch
        if watch is None:
            watch = self._watch = self._broker.append_watch()
        active = [tp for tp in self._positions if tp not in self._paused]
        if watch.watch(active, self._store.directory):
            self._dry.clear()
            return watch.fileno(), 0.0
        now = time.monotonic()
        due = self._next_heartbeat
        if self._pending:
            due = min(due, self._next_take)
        if self._auto_commit:
            due = min(due, self._next_commit)
        return watch.fileno(), max(0.0, min(due - now, watch.max_wait))

    def _fetch(self, max_records: int) -> list[Message]:
        dry = self._dry
        active = [tp for tp in self._positions if tp not in self._paused and tp not in dry]
        if not active:
            return []
        self._rr = (self._rr + 1) % len(active)
        out: list[Message] = []
        damage: CorruptRecord | None = None
        watch = self._watch
        for tp in active[self._rr:] + active[:self._rr]:
            try:
                messages = self._broker.fetch(tp, self._positions[tp],
                                              max_records - len(out),
                                              isolation_level=self.isolation_level)
            except CorruptRecord as exc:
                damage = damage or exc       # the others first; raised once they are dry
                continue
            except OffsetOutOfRange:
                self._positions[tp] = self._start_position(tp, None)
                log.warning("group %s: position of %s[%d] was past the end of the log; "
                            "reset to %s offset %d", self.group_id, tp.topic, tp.partition,
                            self._reset, self._positions[tp])
                continue
            except UnknownTopic:
                continue                     # deleted under us: nothing to read
            if not messages and watch is not None and watch.covers(tp):
                dry.add(tp)                  # at its end: read it again after an event
            if messages:
                self._positions[tp] = messages[-1].offset + 1
                out.extend(messages)
                if len(out) >= max_records:
                    break
        if damage is not None and not out:
            raise damage
        return out

    def _commit_positions(self, tps: Iterable[TopicPartition]) -> None:
        changed = {tp: self._positions[tp] for tp in tps
                   if tp in self._positions and
                   self._positions[tp] != self._last_committed.get(tp)}
        if changed:
            self._store.write_offsets(changed)
            self._last_committed.update(changed)

    def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        if offsets is None:
            self._commit_positions(list(self._positions))
            return
        mine = {tp: off for tp, off in offsets.items() if tp in self._positions}
        if len(mine) != len(offsets):
            log.warning("group %s: not committing offsets of partitions this member does "
                        "not own: %s", self.group_id,
                        sorted(set(offsets) - set(mine)))
        if mine:
            self._store.write_offsets(mine)
            self._last_committed.update(mine)

    def committed(self, tp: TopicPartition) -> int | None:
        return self._store.read_offsets().get(tp)

    def position(self, tp: TopicPartition) -> int:
        if tp not in self._positions:
            raise KeyError(f"{tp.topic}[{tp.partition}] is not assigned to member "
                           f"{self.member_id} of group {self.group_id}")
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._positions:
            raise KeyError(f"{tp.topic}[{tp.partition}] is not assigned to member "
                           f"{self.member_id} of group {self.group_id}")
        self._positions[tp] = offset
        self._dry.discard(tp)

    def pause(self, tps: Iterable[TopicPartition]) -> None:
        self._paused.update(tps)

    def resume(self, tps: Iterable[TopicPartition]) -> None:
        tps = set(tps)
        self._paused.difference_update(tps)
        self._dry -= tps        # (not watched while paused)

    def close(self, commit: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if commit:
            self._commit_positions(list(self._positions))
        self._revoke(set(self._positions) | self._pending, commit=False)
        with self._store.locked():
            state = self._store.read_state()
            if state["members"].pop(self.member_id, None) is not None:
                self._drop_dead(state)
                self._rebalance(state)
            self._store.unregister(self.member_id)
        self._store.close()
        if self._watch is not None:
            self._watch.close()
