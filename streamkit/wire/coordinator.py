"""The coordinator of Kafka's classic group protocol, one for every group of the log.

A group is Empty, PreparingRebalance (members rejoin), CompletingRebalance (the leader
has the members and sends the assignment) or Stable, as in Kafka. Members that stop
heartbeating for their session timeout are removed; a rebalance waits at most the
members' rebalance timeout for them to rejoin.

Protocol members of a "consumer" group are also members of the log's group store
(``streamkit.log.groupstore``), so that ``log://`` workers of the same group see them
and the reverse (decision 911): each protocol member holds its member file (a flock,
touched every second) for its life in this process; each generation is written to the
store's ``state.json``; when the group has ``log://`` members, the store's range
assignment is handed out instead of the leader's; a protocol member's partitions are
taken with the store's ownership locks before its SyncGroup is answered, and let go
when it rejoins, leaves or is removed.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import anyio
from kio.schema.errors import ErrorCode

from streamkit.log.groups import range_assignment
from streamkit.log.groupstore import GroupStore
from streamkit.transport.base import Broker
from streamkit.types import TopicPartition
from streamkit.wire.consumer_protocol import (ProtocolError, decode_assignment,
                                              decode_subscription, encode_assignment)

__all__ = ["COMPLETING", "CONSUMER", "EMPTY", "PREPARING", "STABLE", "Group",
           "GroupCoordinator", "JoinResult", "StoreBroker"]

logger = logging.getLogger("streamkit.wire")

EMPTY = "Empty"
PREPARING = "PreparingRebalance"
COMPLETING = "CompletingRebalance"
STABLE = "Stable"
#: the protocol type whose members are shared with the log's groups
CONSUMER = "consumer"
#: session timeouts accepted, in seconds (Kafka's group.min/max.session.timeout.ms
#: are 6 s and 30 min; the minimum is lower here so that tests and demos are quick)
MIN_SESSION_TIMEOUT = 1.0
MAX_SESSION_TIMEOUT = 1800.0
#: how often timeouts and the store's state are looked at
TICK = 0.05
#: how often protocol members' files in the store are touched (their heartbeat there)
TOUCH_INTERVAL = 1.0
#: a ``log://`` member counts while its process holds its member file: the log's
#: members drop one that stopped polling themselves, by their own session timeout
LOCK_ONLY = 1e9
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@runtime_checkable
class StoreBroker(Protocol):
    """A broker whose groups live in a group store (``LogBroker``)."""

    def group_store(self, group_id: str) -> GroupStore: ...


@dataclass
class JoinResult:
    """What a JoinGroup is answered."""

    error: ErrorCode
    generation: int = -1
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str = ""
    member_id: str = ""
    #: (member id, group instance id, metadata) for the leader; empty for the others
    members: list[tuple[str, str | None, bytes]] = field(default_factory=list)


@dataclass(eq=False)
class Member:
    """A member that joined over the protocol."""

    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None
    session_timeout: float
    rebalance_timeout: float
    protocols: list[tuple[str, bytes]]
    deadline: float
    assignment: bytes = b""
    #: set when the JoinGroup it waits on is answered (None: not waiting)
    joining: anyio.Event | None = None
    join_result: JoinResult | None = None
    #: waiting for its SyncGroup answer (kept alive meanwhile, as Kafka does)
    syncing: bool = False
    #: its handle on the group store (holds its member file and ownership locks)
    store: GroupStore | None = None
    owned: set[TopicPartition] = field(default_factory=set)

    def metadata(self, protocol: str | None) -> bytes:
        return next((m for name, m in self.protocols if name == protocol), b"")


@dataclass(eq=False)
class Group:
    """One group's state in the coordinator."""

    group_id: str
    store: GroupStore | None
    state: str = EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)     # in join order
    #: member ids handed out with MEMBER_ID_REQUIRED, until they join (deadline)
    pending: dict[str, float] = field(default_factory=dict)
    rebalance_deadline: float = 0.0
    synced: anyio.Event = field(default_factory=anyio.Event)
    #: the store's state.json as last written or seen here
    state_version: object = None
    #: ``log://`` members at the last generation: their topics and assignment
    log_members: dict[str, list[str]] = field(default_factory=dict)
    log_assignment: dict[str, list[TopicPartition]] | None = None

    @property
    def shared(self) -> bool:
        """Whether this group's members are shared with the log's group store."""
        return self.store is not None and self.protocol_type in (None, CONSUMER)


class GroupCoordinator:
    """Every group's coordinator: the state machine of the classic protocol."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.groups: dict[str, Group] = {}
        self._next_touch = 0.0

    # -- lifetime --------------------------------------------------------------------
    async def run(self) -> None:
        """Expire members and follow the store, until cancelled."""
        try:
            while True:
                self.tick()
                await anyio.sleep(TICK)
        finally:
            self.close()

    def close(self) -> None:
        """Let go of every member file and lock (the log's members see them gone)."""
        for group in self.groups.values():
            for member in group.members.values():
                self._drop_store(member)
            if group.store is not None:
                group.store.close()
        self.groups.clear()

    def tick(self) -> None:
        """Session and rebalance timeouts; changes made by ``log://`` members."""
        now = time.monotonic()
        touch = now >= self._next_touch
        if touch:
            self._next_touch = now + TOUCH_INTERVAL
        for group in list(self.groups.values()):
            self._expire(group, now)
            self._follow_store(group)
            if touch:
                for member in group.members.values():
                    if member.store is not None:
                        member.store.heartbeat(member.member_id)
            if group.state == EMPTY and not group.members and not group.pending:
                del self.groups[group.group_id]
                if group.store is not None:
                    group.store.close()

    def _expire(self, group: Group, now: float) -> None:
        for member_id, deadline in list(group.pending.items()):
            if now > deadline:
                del group.pending[member_id]
        for member in list(group.members.values()):
            if member.joining is None and not member.syncing and now > member.deadline:
                self._remove(group, member, "its session timed out")
        if group.state == PREPARING and now >= group.rebalance_deadline:
            self._complete_join(group)
        else:
            self._maybe_complete_join(group)

    def _follow_store(self, group: Group) -> None:
        """A new generation written by a ``log://`` member rebalances the protocol
        members too (they rejoin, and get their share of the new assignment)."""
        if group.store is None or not group.shared:
            return
        version = group.store.state_version()
        if version == group.state_version:
            return
        group.state_version = version
        if group.state in (STABLE, COMPLETING):
            logger.info("group %s: the log's members changed; rebalancing", group.group_id)
            self._prepare_rebalance(group)

    def forget(self, group_id: str) -> None:
        """Drop a group without members from memory (it is being deleted)."""
        group = self.groups.get(group_id)
        if group is not None and not group.members:
            del self.groups[group_id]
            if group.store is not None:
                group.store.close()

    def _group(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            store = self.broker.group_store(group_id) \
                if isinstance(self.broker, StoreBroker) else None
            group = self.groups[group_id] = Group(group_id, store)
            if store is not None:
                group.state_version = store.state_version()
                group.generation = store.read_state()["generation"]
        return group

    # -- JoinGroup -------------------------------------------------------------------
    async def join(self, group_id: str, member_id: str, *, client_id: str,
                   client_host: str, session_timeout: float, rebalance_timeout: float,
                   protocol_type: str, protocols: list[tuple[str, bytes]],
                   group_instance_id: str | None, require_member_id: bool) -> JoinResult:
        """Join (or rejoin) ``group_id``; answered when the rebalance completes."""
        if not group_id:
            return JoinResult(ErrorCode.invalid_group_id, member_id=member_id)
        if not MIN_SESSION_TIMEOUT <= session_timeout <= MAX_SESSION_TIMEOUT:
            return JoinResult(ErrorCode.invalid_session_timeout, member_id=member_id)
        group = self._group(group_id)
        if not protocols or (group.members and (
                protocol_type != group.protocol_type or
                not self._candidates(group, {name for name, _ in protocols}))):
            return JoinResult(ErrorCode.inconsistent_group_protocol, member_id=member_id)
        now = time.monotonic()
        if not member_id:
            member_id = f"{_ID_CHARS.sub('_', client_id or 'member')[:80]}-{uuid.uuid4()}"
            if require_member_id:
                # KIP-394: the client comes back with the id, so that a join whose
                # answer was lost leaves no member behind
                group.pending[member_id] = now + session_timeout
                return JoinResult(ErrorCode.member_id_required, member_id=member_id)
        elif member_id not in group.members and member_id not in group.pending:
            return JoinResult(ErrorCode.unknown_member_id, member_id=member_id)
        group.pending.pop(member_id, None)
        group.protocol_type = protocol_type
        member = group.members.get(member_id)
        if member is None:
            member = group.members[member_id] = Member(
                member_id, client_id, client_host, group_instance_id, session_timeout,
                rebalance_timeout, protocols, now + session_timeout)
            self._register(group, member)
        member.protocols, member.session_timeout = protocols, session_timeout
        member.rebalance_timeout = rebalance_timeout
        # the classic (eager) protocol: a member rejoining has given up its partitions
        self._release(member, set(member.owned))
        event = member.joining = anyio.Event()
        if group.state != PREPARING:
            self._prepare_rebalance(group)
        self._maybe_complete_join(group)
        try:
            await event.wait()
        finally:
            if member.joining is event:       # not answered: the connection went away
                member.joining = None
        assert member.join_result is not None
        return member.join_result

    def _candidates(self, group: Group, names: set[str]) -> list[str]:
        """The protocols every member (and ``names``) supports, in the leader's order."""
        first = next(iter(group.members.values()))
        common = [name for name, _ in first.protocols if name in names]
        return [n for n in common
                if all(n in {p for p, _ in m.protocols} for m in group.members.values())]

    def _register(self, group: Group, member: Member) -> None:
        if group.store is None or not group.shared:
            return
        member.store = self.broker.group_store(group.group_id) \
            if isinstance(self.broker, StoreBroker) else None
        if member.store is not None:
            member.store.register(member.member_id)

    def _prepare_rebalance(self, group: Group) -> None:
        if group.state == PREPARING:
            return
        if group.state == COMPLETING:
            group.synced.set()                # SyncGroups waiting: REBALANCE_IN_PROGRESS
        group.synced = anyio.Event()
        group.state = PREPARING
        timeout = max((m.rebalance_timeout for m in group.members.values()), default=0.0)
        group.rebalance_deadline = time.monotonic() + timeout

    def _maybe_complete_join(self, group: Group) -> None:
        if group.state == PREPARING and not group.pending and \
                all(m.joining is not None for m in group.members.values()):
            self._complete_join(group)

    def _complete_join(self, group: Group) -> None:
        """A new generation of the members that rejoined."""
        for member in [m for m in group.members.values() if m.joining is None]:
            self._remove(group, member, "it did not rejoin within the rebalance timeout",
                         rebalance=False)
        group.pending.clear()
        if not group.members:
            group.state, group.leader, group.protocol = EMPTY, None, None
            self._publish(group)
            return
        candidates = self._candidates(group, {n for m in group.members.values()
                                              for n, _ in m.protocols})
        votes = Counter(next(n for n, _ in m.protocols if n in candidates)
                        for m in group.members.values())
        group.protocol = max(candidates, key=lambda n: votes[n])
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        self._publish(group)
        group.state = COMPLETING
        group.synced = anyio.Event()
        now = time.monotonic()
        everyone = [(m.member_id, m.group_instance_id, m.metadata(group.protocol))
                    for m in group.members.values()]
        for member in group.members.values():
            member.assignment = b""
            member.deadline = now + member.session_timeout
            member.join_result = JoinResult(
                ErrorCode.none, group.generation, group.protocol_type, group.protocol,
                group.leader, member.member_id,
                everyone if member.member_id == group.leader else [])
            if member.joining is not None:
                member.joining.set()
                member.joining = None
        logger.info("group %s: generation %d, %d member(s) over the protocol, %d log://",
                    group.group_id, group.generation, len(group.members),
                    len(group.log_members))

    def _publish(self, group: Group) -> None:
        """Write the new generation to the store; the log's members follow it."""
        store = group.store
        if store is None or not group.shared:
            group.generation += 1
            return
        topics: dict[str, Sequence[str]] = {
            m.member_id: _topics(m.metadata(group.protocol)) for m in group.members.values()}
        with store.locked():
            state = store.read_state()
            log_members: dict[str, Sequence[str]] = {
                m: list(info["topics"]) for m, info in state["members"].items()
                if m not in topics and store.is_alive(m, LOCK_ONLY)}
            for gone in set(state["members"]) - set(log_members) - set(topics):
                store.forget(gone)
            everyone: dict[str, Sequence[str]] = {**log_members, **topics}
            state["members"] = {m: {"topics": list(t)} for m, t in everyone.items()}
            state["generation"] = max(state["generation"], group.generation) + 1
            state["assignment"] = {}
            group.log_assignment = None
            if log_members and topics:
                counts = {t: self.broker.partition_count(t) or 0
                          for ts in everyone.values() for t in ts}
                state["assignment"] = range_assignment(everyone, counts)
                group.log_assignment = {
                    m: [TopicPartition(str(t), int(p)) for t, p in pairs]
                    for m, pairs in state["assignment"].items()}
            elif log_members:
                counts = {t: self.broker.partition_count(t) or 0
                          for ts in log_members.values() for t in ts}
                state["assignment"] = range_assignment(log_members, counts)
            store.write_state(state)
            group.state_version = store.state_version()
        group.generation = state["generation"]
        group.log_members = {m: list(t) for m, t in log_members.items()}

    # -- SyncGroup -------------------------------------------------------------------
    async def sync(self, group_id: str, generation: int, member_id: str, *,
                   protocol_type: str | None, protocol: str | None,
                   assignments: dict[str, bytes]) -> tuple[ErrorCode, bytes]:
        """The member's assignment of this generation, once the leader sent it."""
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            return ErrorCode.unknown_member_id, b""
        if generation != group.generation:
            return ErrorCode.illegal_generation, b""
        if (protocol_type is not None and protocol_type != group.protocol_type) or \
                (protocol is not None and protocol != group.protocol):
            return ErrorCode.inconsistent_group_protocol, b""
        if group.state == PREPARING:
            return ErrorCode.rebalance_in_progress, b""
        member.deadline = time.monotonic() + member.session_timeout
        member.syncing = True
        try:
            if group.state == COMPLETING:
                if member_id == group.leader:
                    self._assign(group, assignments)
                else:
                    await group.synced.wait()
            if group.state != STABLE or group.generation != generation or \
                    member_id not in group.members:
                return ErrorCode.rebalance_in_progress, b""
            if not await self._take_partitions(group, member, generation):
                return ErrorCode.rebalance_in_progress, b""
        finally:
            member.syncing = False
        member.deadline = time.monotonic() + member.session_timeout
        return ErrorCode.none, member.assignment

    def _assign(self, group: Group, assignments: dict[str, bytes]) -> None:
        """The leader's assignment (or the store's, with ``log://`` members): Stable."""
        for member in group.members.values():
            if group.log_assignment is not None:
                member.assignment = encode_assignment(
                    group.log_assignment.get(member.member_id, []))
            else:
                member.assignment = assignments.get(member.member_id, b"")
        if group.log_assignment is None and group.store is not None and group.shared:
            self._record_assignment(group)
        group.state = STABLE
        group.synced.set()

    def _record_assignment(self, group: Group) -> None:
        """Write the leader's assignment into the store's state (for inspection)."""
        assert group.store is not None
        with group.store.locked():
            state = group.store.read_state()
            if state["generation"] != group.generation:
                return                             # the log's members moved on
            state["assignment"] = {m.member_id: [[tp.topic, tp.partition]
                                                 for tp in _partitions(m.assignment)]
                                   for m in group.members.values()}
            group.store.write_state(state)
            group.state_version = group.store.state_version()

    async def _take_partitions(self, group: Group, member: Member, generation: int
                               ) -> bool:
        """Hold the ownership locks of the member's partitions (waiting for a
        ``log://`` member still reading one to let go); False if the group moved on
        or they stayed taken for the member's session timeout."""
        store = member.store
        if store is None:
            return True
        target = set(_partitions(member.assignment))
        self._release(member, member.owned - target)
        limit = time.monotonic() + member.session_timeout
        while True:
            for tp in sorted(target - member.owned):
                if store.acquire(tp, member.member_id):
                    member.owned.add(tp)
            if member.owned >= target:
                return True
            if group.generation != generation or group.state != STABLE or \
                    member.member_id not in group.members:
                return False
            if time.monotonic() > limit:
                logger.warning("group %s: %s still taken by another member after %.1f s; "
                               "member %s rejoins", group.group_id,
                               sorted(target - member.owned), member.session_timeout,
                               member.member_id)
                return False
            await anyio.sleep(0.01)

    def _release(self, member: Member, tps: set[TopicPartition]) -> None:
        if member.store is not None:
            for tp in tps:
                member.store.release(tp, member.member_id)
        member.owned -= tps

    # -- Heartbeat, LeaveGroup, commits --------------------------------------------------
    def heartbeat(self, group_id: str, generation: int, member_id: str) -> ErrorCode:
        """A member's heartbeat; REBALANCE_IN_PROGRESS tells it to rejoin."""
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            return ErrorCode.unknown_member_id
        if generation != group.generation:
            return ErrorCode.illegal_generation
        member.deadline = time.monotonic() + member.session_timeout
        if group.state == PREPARING:
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave(self, group_id: str, member_id: str) -> ErrorCode:
        """Remove a member that leaves (closes); the others rebalance."""
        group = self.groups.get(group_id)
        member = group.members.get(member_id) if group is not None else None
        if group is None or member is None:
            return ErrorCode.unknown_member_id
        self._remove(group, member, "it left the group")
        return ErrorCode.none

    def check_commit(self, group_id: str, generation: int, member_id: str) -> ErrorCode:
        """Whether a member may commit offsets now (Kafka's checks); NONE if so. A
        commit with generation -1 and no member id (a consumer that assigns its
        partitions itself) is taken while the group has no members over the protocol."""
        group = self.groups.get(group_id)
        if group is None or not group.members:
            return ErrorCode.none if generation < 0 else ErrorCode.illegal_generation
        if group.state == COMPLETING:
            return ErrorCode.rebalance_in_progress
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.unknown_member_id
        if generation != group.generation:
            return ErrorCode.illegal_generation
        member.deadline = time.monotonic() + member.session_timeout
        return ErrorCode.none

    def _remove(self, group: Group, member: Member, reason: str, *,
                rebalance: bool = True) -> None:
        logger.info("group %s: member %s removed: %s", group.group_id, member.member_id,
                    reason)
        del group.members[member.member_id]
        if member.joining is not None:
            member.join_result = JoinResult(ErrorCode.unknown_member_id,
                                            member_id=member.member_id)
            member.joining.set()
            member.joining = None
        self._drop_store(member)
        if group.leader == member.member_id:
            group.leader = None
        if not rebalance:
            return
        if not group.members and group.state != PREPARING:
            group.state, group.protocol = EMPTY, None
            self._publish(group)
        elif group.state in (STABLE, COMPLETING):
            self._prepare_rebalance(group)
        else:
            self._maybe_complete_join(group)

    def _drop_store(self, member: Member) -> None:
        self._release(member, set(member.owned))
        if member.store is not None:
            member.store.unregister(member.member_id)
            member.store.close()
            member.store = None


def _topics(metadata: bytes) -> list[str]:
    try:
        return decode_subscription(metadata)
    except ProtocolError as exc:
        logger.warning("member metadata is not the consumer protocol's (%s): no topics",
                       exc)
        return []


def _partitions(assignment: bytes) -> list[TopicPartition]:
    try:
        return decode_assignment(assignment)
    except ProtocolError as exc:
        logger.warning("an assignment is not the consumer protocol's (%s)", exc)
        return []
