"""Consumer groups over the protocol: FindCoordinator, the classic group protocol
(JoinGroup, SyncGroup, Heartbeat, LeaveGroup), OffsetCommit / OffsetFetch,
ListGroups / DescribeGroups and DeleteGroups.

This node coordinates every group. The state machine is ``coordinator``'s; this module
reads the requests and writes the answers. Committed offsets are the log's own (the
group store under the log's directory, ``Broker.commit_offsets``/``group_offsets``),
so ``log://`` consumers and ``streamkit`` commands see what Kafka clients commit, and
the reverse (decision 911).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode

from streamkit.errors import BrokerError, InvalidConfig
from streamkit.names import is_topic_name
from streamkit.types import TopicPartition
from streamkit.wire.apis import (DELETE_GROUPS, DESCRIBE_GROUPS, FIND_COORDINATOR,
                                 HEARTBEAT, JOIN_GROUP, LEAVE_GROUP, LIST_GROUPS,
                                 NO_THROTTLE, NODE_ID, OFFSET_COMMIT, OFFSET_FETCH,
                                 SYNC_GROUP, Node, build, has_field, nested)
from streamkit.wire.consumer_protocol import encode_assignment, encode_subscription
from streamkit.wire.coordinator import (CONSUMER, EMPTY, LOCK_ONLY, STABLE,
                                        GroupCoordinator, StoreBroker)
from streamkit.wire.protocol import Request, response_type
from streamkit.wire.transactions import TransactionalBroker, serves_transactions

__all__ = ["GROUP_HANDLERS", "GroupView", "MemberView", "all_groups", "describe"]

#: Kafka's key types of FindCoordinator
_GROUP_KEY = 0
_TRANSACTION_KEY = 1
_UNKNOWN_AUTHORIZED_OPERATIONS = -2147483648


def _seconds(value: Any) -> float:
    """A kio duration (a timedelta) in seconds."""
    return float(value.total_seconds())


# -- FindCoordinator --------------------------------------------------------------------
async def find_coordinator(groups: GroupCoordinator, node: Node, request: Request,
                           peer: str) -> Any:
    """This node coordinates every group and every transactional id (v4+ ask for many
    keys at once)."""
    cls = response_type(FIND_COORDINATOR, request.api_version)
    body = request.body
    key_type = getattr(body, "key_type", _GROUP_KEY)
    if has_field(cls, "coordinators"):
        coordinator_cls = nested(cls, "Coordinator")
        answers = tuple(build(coordinator_cls, key=key, **_coordinator(node, key, key_type))
                        for key in body.coordinator_keys)
        return build(cls, throttle_time=NO_THROTTLE, coordinators=answers)
    return build(cls, throttle_time=NO_THROTTLE, **_coordinator(node, body.key, key_type))


def _coordinator(node: Node, key: str, key_type: int) -> dict[str, Any]:
    if key_type == _TRANSACTION_KEY and not serves_transactions(node):
        error, message = (ErrorCode.coordinator_not_available,
                          "this broker's log has no transactions")
    elif key_type == _TRANSACTION_KEY and not key:
        error, message = ErrorCode.invalid_request, "an empty transactional id"
    elif key_type not in (_GROUP_KEY, _TRANSACTION_KEY):
        error, message = ErrorCode.invalid_request, f"key type {key_type} is not served"
    elif not key:
        error, message = ErrorCode.invalid_request, "an empty group id"
    else:
        return dict(error_code=ErrorCode.none, error_message=None, node_id=NODE_ID,
                    host=node.host, port=node.port)
    return dict(error_code=error, error_message=message, node_id=-1, host="", port=-1)


# -- JoinGroup, SyncGroup, Heartbeat, LeaveGroup ------------------------------------------
async def join_group(groups: GroupCoordinator, node: Node, request: Request,
                     peer: str) -> Any:
    """Join the group; answered once every member rejoined (or the rebalance timed
    out). v4+ without a group instance id: a new member is first given its id with
    MEMBER_ID_REQUIRED, as Kafka does."""
    cls = response_type(JOIN_GROUP, request.api_version)
    body = request.body
    instance = getattr(body, "group_instance_id", None)
    session = _seconds(body.session_timeout)
    result = await groups.join(
        body.group_id, body.member_id, client_id=request.client_id or "",
        client_host=peer, session_timeout=session,
        rebalance_timeout=_seconds(getattr(body, "rebalance_timeout", body.session_timeout)),
        protocol_type=body.protocol_type,
        protocols=[(p.name, p.metadata) for p in body.protocols],
        group_instance_id=instance,
        require_member_id=request.api_version >= 4 and instance is None)
    member_cls = nested(cls, "JoinGroupResponseMember")
    members = tuple(build(member_cls, member_id=m, group_instance_id=i, metadata=data)
                    for m, i, data in result.members)
    nullable = request.api_version >= 7       # protocol type and name may be null
    return build(cls, throttle_time=NO_THROTTLE, error_code=result.error,
                 generation_id=result.generation,
                 protocol_type=result.protocol_type if nullable else None,
                 protocol_name=result.protocol if nullable else (result.protocol or ""),
                 leader=result.leader, skip_assignment=False, member_id=result.member_id,
                 members=members)


async def sync_group(groups: GroupCoordinator, node: Node, request: Request,
                     peer: str) -> Any:
    """The member's assignment, once the leader has sent everyone's."""
    cls = response_type(SYNC_GROUP, request.api_version)
    body = request.body
    error, assignment = await groups.sync(
        body.group_id, body.generation_id, body.member_id,
        protocol_type=getattr(body, "protocol_type", None),
        protocol=getattr(body, "protocol_name", None),
        assignments={a.member_id: a.assignment for a in body.assignments})
    group = groups.groups.get(body.group_id)
    return build(cls, throttle_time=NO_THROTTLE, error_code=error,
                 protocol_type=group.protocol_type if group else None,
                 protocol_name=group.protocol if group else None, assignment=assignment)


async def heartbeat(groups: GroupCoordinator, node: Node, request: Request,
                    peer: str) -> Any:
    """A member is alive; REBALANCE_IN_PROGRESS when it must rejoin."""
    cls = response_type(HEARTBEAT, request.api_version)
    body = request.body
    error = groups.heartbeat(body.group_id, body.generation_id, body.member_id)
    return build(cls, throttle_time=NO_THROTTLE, error_code=error)


async def leave_group(groups: GroupCoordinator, node: Node, request: Request,
                      peer: str) -> Any:
    """Members leave (one before v3, a list since); the others rebalance at once."""
    cls = response_type(LEAVE_GROUP, request.api_version)
    body = request.body
    if not has_field(type(body), "members"):
        error = groups.leave(body.group_id, body.member_id)
        return build(cls, throttle_time=NO_THROTTLE, error_code=error)
    member_cls = nested(cls, "MemberResponse")
    answers = tuple(build(member_cls, member_id=m.member_id,
                          group_instance_id=m.group_instance_id,
                          error_code=groups.leave(body.group_id, m.member_id))
                    for m in body.members)
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                 members=answers)


# -- OffsetCommit, OffsetFetch ----------------------------------------------------------
async def offset_commit(groups: GroupCoordinator, node: Node, request: Request,
                        peer: str) -> Any:
    """Store committed offsets in the log's group store (metadata strings are not
    kept: the store holds offsets only)."""
    cls = response_type(OFFSET_COMMIT, request.api_version)
    body = request.body
    part_cls = nested(cls, "OffsetCommitResponsePartition")
    topic_cls = nested(cls, "OffsetCommitResponseTopic")
    error = ErrorCode.invalid_group_id if not body.group_id else groups.check_commit(
        body.group_id, body.generation_id_or_member_epoch, body.member_id)
    offsets: dict[TopicPartition, int] = {}
    answers: list[tuple[str, list[tuple[int, ErrorCode]]]] = []
    for topic in body.topics:
        parts = []
        for part in topic.partitions:
            tp = TopicPartition(topic.name, part.partition_index)
            code = error if error is not ErrorCode.none else _commit_error(node, tp)
            if code is ErrorCode.none:
                offsets[tp] = part.committed_offset
            parts.append((part.partition_index, code))
        answers.append((topic.name, parts))
    if offsets:
        try:
            node.broker.commit_offsets(body.group_id, offsets)
        except (BrokerError, InvalidConfig, OSError):
            answers = [(t, [(p, ErrorCode.unknown_server_error) for p, _ in parts])
                       for t, parts in answers]
    topics = tuple(build(topic_cls, name=name, partitions=tuple(
        build(part_cls, partition_index=p, error_code=code) for p, code in parts))
        for name, parts in answers)
    return build(cls, throttle_time=NO_THROTTLE, topics=topics)


def _commit_error(node: Node, tp: TopicPartition) -> ErrorCode:
    if not is_topic_name(tp.topic):
        return ErrorCode.unknown_topic_or_partition
    count = node.broker.partition_count(tp.topic)
    if count is None or not 0 <= tp.partition < count:
        return ErrorCode.unknown_topic_or_partition
    return ErrorCode.none


async def offset_fetch(groups: GroupCoordinator, node: Node, request: Request,
                       peer: str) -> Any:
    """Committed offsets of the partitions asked for (all committed ones for a null
    list); -1 where none is committed, or the group is unknown. v8+ ask for many
    groups at once. With require_stable (v7+, read_committed consumers), a partition
    whose offset a transaction not yet ended holds answers UNSTABLE_OFFSET_COMMIT
    (the client asks again), as in Kafka (KIP-447)."""
    cls = response_type(OFFSET_FETCH, request.api_version)
    body = request.body
    stable = bool(getattr(body, "require_stable", False))
    if has_field(type(body), "groups"):
        group_cls = nested(cls, "OffsetFetchResponseGroup")
        answers = tuple(build(group_cls, group_id=g.group_id, error_code=ErrorCode.none,
                              topics=_fetched(node, cls, g.group_id, g.topics, stable,
                                              "OffsetFetchResponseTopics",
                                              "OffsetFetchResponsePartitions"))
                        for g in body.groups)
        return build(cls, throttle_time=NO_THROTTLE, groups=answers)
    topics = _fetched(node, cls, body.group_id, body.topics, stable,
                      "OffsetFetchResponseTopic", "OffsetFetchResponsePartition")
    return build(cls, throttle_time=NO_THROTTLE, topics=topics, error_code=ErrorCode.none)


def _fetched(node: Node, cls: type[Any], group_id: str, asked: Any, stable: bool,
             topic_name: str, part_name: str) -> tuple[Any, ...]:
    # the unstable ones first: a transaction found ended has written its offsets
    # before, so the committed ones read next are those it left
    unstable = _unstable(node, group_id) if stable else set()
    committed = {TopicPartition(o.topic, o.partition): o.committed
                 for o in node.broker.group_offsets(group_id) if o.committed is not None}
    if asked is None:
        wanted: dict[str, list[int]] = {}
        for tp in sorted(committed):
            wanted.setdefault(tp.topic, []).append(tp.partition)
    else:
        wanted = {t.name: list(t.partition_indexes) for t in asked}
    topic_cls, part_cls = nested(cls, topic_name), nested(cls, part_name)

    def partition(topic: str, p: int) -> Any:
        tp = TopicPartition(topic, p)
        if tp in unstable:
            return build(part_cls, partition_index=p, committed_offset=-1,
                         committed_leader_epoch=-1, metadata="",
                         error_code=ErrorCode.unstable_offset_commit)
        return build(part_cls, partition_index=p, committed_offset=committed.get(tp, -1),
                     committed_leader_epoch=-1, metadata="", error_code=ErrorCode.none)

    return tuple(build(topic_cls, name=topic, partitions=tuple(
        partition(topic, p) for p in partitions)) for topic, partitions in wanted.items())


def _unstable(node: Node, group_id: str) -> set[TopicPartition]:
    """The group's partitions whose offsets a transaction not yet ended holds (a
    transaction past its timeout is aborted first: it holds none)."""
    if not serves_transactions(node) or not group_id:
        return set()
    broker = node.broker
    assert isinstance(broker, TransactionalBroker)
    return broker.transactions().pending_offsets(group_id)


# -- ListGroups, DescribeGroups ---------------------------------------------------------
@dataclass(frozen=True)
class MemberView:
    """A member as DescribeGroups shows it."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupView:
    """A group as ListGroups and DescribeGroups show it."""

    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: list[MemberView]


def describe(groups: GroupCoordinator, group_id: str) -> GroupView | None:
    """The group's state and members (over the protocol and ``log://``); None if
    there is no such group."""
    group = groups.groups.get(group_id)
    if group is not None and group.members:
        members = [MemberView(m.member_id, m.group_instance_id, m.client_id,
                              m.client_host, m.metadata(group.protocol), m.assignment)
                   for m in group.members.values()]
        assignment = group.log_assignment or {}
        members += [_log_member(m, topics, assignment.get(m, []))
                    for m, topics in group.log_members.items()]
        return GroupView(group_id, group.state, group.protocol_type or "",
                         group.protocol or "", members)
    broker = groups.broker
    if not isinstance(broker, StoreBroker) or group_id not in broker.list_groups():
        return None
    store = broker.group_store(group_id)
    try:
        state = store.read_state()
        alive = [m for m in state["members"] if store.is_alive(m, LOCK_ONLY)]
    finally:
        store.close()
    log_assignment = {m: [TopicPartition(str(t), int(p)) for t, p in pairs]
                      for m, pairs in state["assignment"].items()}
    members = [_log_member(m, list(state["members"][m]["topics"]),
                           log_assignment.get(m, [])) for m in alive]
    return GroupView(group_id, STABLE if members else EMPTY, CONSUMER,
                     "range" if members else "", members)


def all_groups(groups: GroupCoordinator) -> list[GroupView]:
    """Every group: those of the log's store and those joined over the protocol."""
    views = []
    for name in sorted(set(groups.broker.list_groups()) | set(groups.groups)):
        view = describe(groups, name)
        if view is None and name in groups.groups:     # joining, no generation yet
            group = groups.groups[name]
            view = GroupView(name, group.state, group.protocol_type or "", "", [])
        if view is not None:
            views.append(view)
    return views


def _log_member(member_id: str, topics: list[str], tps: list[TopicPartition]
                ) -> MemberView:
    """A ``log://`` member as a Kafka tool sees it."""
    return MemberView(member_id, None, "streamkit log://", "localhost",
                      encode_subscription(topics), encode_assignment(tps))


async def list_groups(groups: GroupCoordinator, node: Node, request: Request,
                      peer: str) -> Any:
    """Every group of the log and of the protocol, filtered by state (v4+) and type
    (v5+: every group here is "classic")."""
    cls = response_type(LIST_GROUPS, request.api_version)
    body = request.body
    states = {s.lower() for s in getattr(body, "states_filter", ())}
    types = {t.lower() for t in getattr(body, "types_filter", ())}
    listed_cls = nested(cls, "ListedGroup")
    listed = tuple(build(listed_cls, group_id=g.group_id, protocol_type=g.protocol_type,
                         group_state=g.state, group_type="classic")
                   for g in all_groups(groups)
                   if (not states or g.state.lower() in states)
                   and (not types or "classic" in types))
    return build(cls, throttle_time=NO_THROTTLE, error_code=ErrorCode.none, groups=listed)


async def describe_groups(groups: GroupCoordinator, node: Node, request: Request,
                          peer: str) -> Any:
    """Each group's state, protocol and members (``log://`` members too); an unknown
    group is "Dead" with no members, as Kafka answers before v6."""
    cls = response_type(DESCRIBE_GROUPS, request.api_version)
    described = tuple(_described(cls, group_id, describe(groups, group_id))
                      for group_id in request.body.groups)
    return build(cls, throttle_time=NO_THROTTLE, groups=described)


def _described(cls: type[Any], group_id: str, view: GroupView | None) -> Any:
    group_cls = nested(cls, "DescribedGroup")
    if view is None:
        return build(group_cls, error_code=ErrorCode.none, group_id=group_id,
                     group_state="Dead", protocol_type="", protocol_data="", members=(),
                     authorized_operations=_UNKNOWN_AUTHORIZED_OPERATIONS)
    member_cls = nested(cls, "DescribedGroupMember")
    members = tuple(build(member_cls, member_id=m.member_id,
                          group_instance_id=m.group_instance_id, client_id=m.client_id,
                          client_host=m.client_host, member_metadata=m.metadata,
                          member_assignment=m.assignment) for m in view.members)
    return build(group_cls, error_code=ErrorCode.none, group_id=group_id,
                 group_state=view.state, protocol_type=view.protocol_type,
                 protocol_data=view.protocol, members=members,
                 authorized_operations=_UNKNOWN_AUTHORIZED_OPERATIONS)


async def delete_groups(groups: GroupCoordinator, node: Node, request: Request,
                        peer: str) -> Any:
    """Delete groups with no live member (their committed offsets and state):
    NON_EMPTY_GROUP while one has members (over the protocol or ``log://``)."""
    cls = response_type(DELETE_GROUPS, request.api_version)
    result_cls = nested(cls, "DeletableGroupResult")
    results = tuple(build(result_cls, group_id=group_id,
                          error_code=_delete_group(groups, node, group_id))
                    for group_id in request.body.groups_names)
    return build(cls, throttle_time=NO_THROTTLE, results=results)


def _delete_group(groups: GroupCoordinator, node: Node, group_id: str) -> ErrorCode:
    group = groups.groups.get(group_id)
    if group is not None and (group.members or group.pending):
        return ErrorCode.non_empty_group
    if not group_id or group_id not in node.broker.list_groups():
        return ErrorCode.group_id_not_found
    groups.forget(group_id)
    try:
        node.broker.delete_group(group_id)        # refuses live log:// members
    except (BrokerError, InvalidConfig):
        return ErrorCode.non_empty_group
    return ErrorCode.none


GroupHandler = Callable[[GroupCoordinator, Node, Request, str], Awaitable[Any]]
#: the group APIs' handlers, by api key (awaited: JoinGroup and SyncGroup wait)
GROUP_HANDLERS: dict[int, GroupHandler] = {
    FIND_COORDINATOR: find_coordinator,
    JOIN_GROUP: join_group,
    SYNC_GROUP: sync_group,
    HEARTBEAT: heartbeat,
    LEAVE_GROUP: leave_group,
    OFFSET_COMMIT: offset_commit,
    OFFSET_FETCH: offset_fetch,
    LIST_GROUPS: list_groups,
    DESCRIBE_GROUPS: describe_groups,
    DELETE_GROUPS: delete_groups,
}
