"""The group APIs spoken by hand (kio's classes), where a test needs to control what a
real client does on its own: when it heartbeats, rejoins or goes silent."""
from __future__ import annotations

import datetime
import socket
import time
from typing import Any

import pytest

from streamkit.wire.consumer_protocol import decode_assignment, encode_assignment, \
    encode_subscription
from streamkit.types import TopicPartition
from tests.wire.conftest import Wire, decode_response, frame_of, kio_body, kio_module, \
    read_frame

FIND_COORDINATOR, JOIN, HEARTBEAT, LEAVE, SYNC = 10, 11, 12, 13, 14
OFFSET_COMMIT, OFFSET_FETCH, DESCRIBE = 8, 9, 15
NONE, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS = 0, 22, 25, 27
MEMBER_ID_REQUIRED, INVALID_SESSION_TIMEOUT, INCONSISTENT_PROTOCOL = 79, 26, 23


class Client:
    """One connection sending requests of chosen versions."""

    def __init__(self, wire: Wire) -> None:
        self.sock = socket.create_connection(("127.0.0.1", wire.port), timeout=10)
        self.correlation = 0

    def send(self, api_key: int, version: int, **values: Any) -> None:
        cls, _module = kio_module(api_key, version)
        self.correlation += 1
        self.sock.sendall(frame_of(api_key, version, kio_body(cls, **values),
                                   self.correlation))
        self.pending = (api_key, version)

    def receive(self) -> Any:
        data = read_frame(self.sock)
        assert data is not None, "the server closed the connection"
        return decode_response(data, *self.pending)[1]

    def call(self, api_key: int, version: int, **values: Any) -> Any:
        self.send(api_key, version, **values)
        return self.receive()

    def send_join(self, member_id: str = "", *, session_ms: int = 1000,
                  rebalance_ms: int = 3000, version: int = 5, group: str = "g",
                  topics: tuple[str, ...] = ("t",)) -> None:
        _cls, module = kio_module(JOIN, version)
        protocol = module.JoinGroupRequestProtocol(name="range",
                                                   metadata=encode_subscription(topics))
        self.send(JOIN, version, group_id=group, member_id=member_id,
                  session_timeout=datetime.timedelta(milliseconds=session_ms),
                  rebalance_timeout=datetime.timedelta(milliseconds=rebalance_ms),
                  group_instance_id=None, protocol_type="consumer",
                  protocols=(protocol,), reason=None)

    def join(self, member_id: str = "", **options: Any) -> Any:
        self.send_join(member_id, **options)
        return self.receive()

    def sync(self, generation: int, member_id: str,
             assignments: dict[str, list[TopicPartition]] | None = None,
             group: str = "g") -> Any:
        _cls, module = kio_module(SYNC, 3)
        pairs = tuple(module.SyncGroupRequestAssignment(member_id=m,
                                                        assignment=encode_assignment(tps))
                      for m, tps in (assignments or {}).items())
        return self.call(SYNC, 3, group_id=group, generation_id=generation,
                         member_id=member_id, group_instance_id=None, assignments=pairs)

    def heartbeat(self, generation: int, member_id: str, group: str = "g") -> int:
        return int(self.call(HEARTBEAT, 3, group_id=group, generation_id=generation,
                             member_id=member_id, group_instance_id=None).error_code)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def clients(wire: Wire) -> Any:
    made: list[Client] = []

    def make() -> Client:
        made.append(Client(wire))
        return made[-1]

    yield make
    for client in made:
        client.close()


def joined(client: Client, **options: Any) -> Any:
    """A member's JoinGroup answer, after the MEMBER_ID_REQUIRED round (v4+)."""
    first = client.join(**options)
    assert first.error_code == MEMBER_ID_REQUIRED and first.member_id
    return client.join(first.member_id, **options)


def test_find_coordinator_names_this_node_for_any_group_or_transactional_id(
        wire: Wire, clients: Any) -> None:
    client = clients()
    one = client.call(FIND_COORDINATOR, 3, key="orders", key_type=0)
    batched = client.call(FIND_COORDINATOR, 4, key_type=0, coordinator_keys=("a", "b"))
    transactions = client.call(FIND_COORDINATOR, 4, key_type=1, coordinator_keys=("tx",))

    assert (one.error_code, one.node_id, one.host, one.port) == \
        (NONE, 0, "127.0.0.1", wire.port)
    assert [(c.key, c.node_id, c.port, c.error_code) for c in batched.coordinators] == \
        [("a", 0, wire.port, NONE), ("b", 0, wire.port, NONE)]
    assert [(c.key, c.node_id, c.port, c.error_code) for c in transactions.coordinators] \
        == [("tx", 0, wire.port, NONE)]            # the transaction coordinator too


def test_a_second_member_makes_heartbeats_ask_the_first_to_rejoin(wire: Wire,
                                                                  clients: Any) -> None:
    wire.log.create_topic("t", 4)
    first, second = clients(), clients()
    one = joined(first)
    assert (one.error_code, one.generation_id, one.leader) == (NONE, 1, one.member_id)
    synced = first.sync(1, one.member_id, {one.member_id: [TopicPartition("t", p)
                                                          for p in range(4)]})
    assert len(decode_assignment(synced.assignment)) == 4
    assert first.heartbeat(1, one.member_id) == NONE

    required = second.join()
    second.send_join(required.member_id)          # waits for the first to rejoin
    answers = [first.heartbeat(1, one.member_id)]
    while answers[-1] == NONE and len(answers) < 100:      # (the join is on its way)
        time.sleep(0.02)
        answers.append(first.heartbeat(1, one.member_id))
    assert answers[-1] == REBALANCE_IN_PROGRESS
    again = first.join(one.member_id)
    two = second.receive()

    assert (again.error_code, two.error_code) == (NONE, NONE)
    assert again.generation_id == two.generation_id == 2
    assert again.leader == two.leader == one.member_id
    assert sorted(m.member_id for m in again.members) == \
        sorted([one.member_id, two.member_id])
    assert two.members == ()                           # only the leader gets them
    # the follower's SyncGroup waits for the leader's, and gets what the leader chose
    plan = {one.member_id: [TopicPartition("t", 0), TopicPartition("t", 1)],
            two.member_id: [TopicPartition("t", 2), TopicPartition("t", 3)]}
    _cls, module = kio_module(SYNC, 3)
    second.send(SYNC, 3, group_id="g", generation_id=2, member_id=two.member_id,
                group_instance_id=None, assignments=())
    leader_sync = first.sync(2, one.member_id, plan)
    follower_sync = second.receive()
    assert decode_assignment(leader_sync.assignment) == plan[one.member_id]
    assert decode_assignment(follower_sync.assignment) == plan[two.member_id]
    assert first.heartbeat(1, one.member_id) == ILLEGAL_GENERATION
    assert second.heartbeat(2, two.member_id) == NONE


def test_a_member_that_stops_heartbeating_is_dropped_after_its_session_timeout(
        wire: Wire, clients: Any) -> None:
    wire.log.create_topic("t", 2)
    silent, alive = clients(), clients()
    gone = joined(silent, session_ms=1000)
    silent.sync(1, gone.member_id, {gone.member_id: [TopicPartition("t", 0)]})
    started = time.monotonic()

    # a new member's join completes only once the silent one is dropped (it never
    # rejoins: its session times out before the 3 s rebalance timeout)
    member = joined(alive, session_ms=5000)
    waited = time.monotonic() - started

    assert member.error_code == NONE and member.leader == member.member_id
    assert [m.member_id for m in member.members] == [member.member_id]
    assert 0.9 < waited < 2.9
    assert silent.heartbeat(1, gone.member_id) == UNKNOWN_MEMBER_ID
    described = alive.call(DESCRIBE, 5, groups=("g",), include_authorized_operations=False)
    assert [m.member_id for m in described.groups[0].members] == [member.member_id]


def test_leaving_ends_membership_and_a_join_of_bad_settings_is_refused(
        wire: Wire, clients: Any) -> None:
    client = clients()
    member = joined(client)
    left = client.call(LEAVE, 4, group_id="g", members=(
        kio_module(LEAVE, 4)[1].MemberIdentity(member_id=member.member_id,
                                               group_instance_id=None),))
    assert [m.error_code for m in left.members] == [NONE]
    assert client.heartbeat(member.generation_id, member.member_id) == UNKNOWN_MEMBER_ID
    assert client.join("stranger").error_code == UNKNOWN_MEMBER_ID
    assert client.join(session_ms=10).error_code == INVALID_SESSION_TIMEOUT
    # v0-v3 have no MEMBER_ID_REQUIRED round: the first join makes the member
    old = client.join(version=3)
    assert (old.error_code, old.generation_id) == (NONE, member.generation_id + 2)


def test_commits_check_the_generation_and_offset_fetch_answers_unknown_groups(
        wire: Wire, clients: Any) -> None:
    wire.log.create_topic("t", 2)
    client = clients()
    member = joined(client)
    client.sync(1, member.member_id, {member.member_id: [TopicPartition("t", 0)]})
    _cls, module = kio_module(OFFSET_COMMIT, 8)

    def commit(generation: int, member_id: str, topic: str = "t") -> list[int]:
        part = kio_body(module.OffsetCommitRequestPartition, partition_index=0,
                        committed_offset=7, committed_leader_epoch=-1,
                        committed_metadata=None)
        answer = client.call(OFFSET_COMMIT, 8, group_id="g",
                             generation_id_or_member_epoch=generation, member_id=member_id,
                             group_instance_id=None, topics=(
                                 module.OffsetCommitRequestTopic(name=topic,
                                                                 partitions=(part,)),))
        return [p.error_code for t in answer.topics for p in t.partitions]

    assert commit(0, member.member_id) == [ILLEGAL_GENERATION]
    assert commit(1, "someone") == [UNKNOWN_MEMBER_ID]
    assert commit(1, member.member_id, topic="missing") == [3]   # UNKNOWN_TOPIC_OR_PART
    assert commit(1, member.member_id) == [NONE]

    fetch_module = kio_module(OFFSET_FETCH, 8)[1]
    asked = fetch_module.OffsetFetchRequestTopics(name="t", partition_indexes=(0, 1))
    answer = client.call(OFFSET_FETCH, 8, require_stable=False, groups=(
        fetch_module.OffsetFetchRequestGroup(group_id="g", topics=(asked,)),
        fetch_module.OffsetFetchRequestGroup(group_id="nobody", topics=(asked,)),
        fetch_module.OffsetFetchRequestGroup(group_id="g", topics=None)))
    offsets = [[(t.name, p.partition_index, p.committed_offset, p.error_code)
                for t in g.topics for p in t.partitions] for g in answer.groups]
    assert offsets == [[("t", 0, 7, NONE), ("t", 1, -1, NONE)],
                       [("t", 0, -1, NONE), ("t", 1, -1, NONE)],
                       [("t", 0, 7, NONE)]]
    assert [g.error_code for g in answer.groups] == [NONE, NONE, NONE]
    old = client.call(OFFSET_FETCH, 1, group_id="nobody", topics=(
        kio_module(OFFSET_FETCH, 1)[1].OffsetFetchRequestTopic(name="t",
                                                               partition_indexes=(0,)),))
    assert [p.committed_offset for t in old.topics for p in t.partitions] == [-1]
    # committed where log:// groups keep theirs
    assert [(o.partition, o.committed) for o in wire.log.group_offsets("g")] == [(0, 7)]


def test_a_client_that_goes_away_while_its_join_waits_is_let_go(wire: Wire,
                                                                clients: Any) -> None:
    first, second = clients(), clients()
    one = joined(first, rebalance_ms=60_000)
    first.sync(1, one.member_id)
    required = second.join(rebalance_ms=60_000)
    second.send_join(required.member_id, rebalance_ms=60_000)   # waits for the first
    assert wire.server.connections == 2
    second.close()

    deadline = time.monotonic() + 3
    while wire.server.connections > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wire.server.connections == 1
    # the first rejoins; the second, gone, is dropped at its session timeout
    assert first.heartbeat(1, one.member_id) == REBALANCE_IN_PROGRESS
    again = first.join(one.member_id, rebalance_ms=60_000)
    assert (again.error_code, [m.member_id for m in again.members]) == \
        (NONE, [one.member_id])


def test_delete_groups_refuses_a_group_with_members_and_deletes_an_empty_one(
        wire: Wire, clients: Any) -> None:
    client = clients()
    member = joined(client)

    def delete() -> list[int]:
        return [r.error_code for r in client.call(42, 2, groups_names=("g",)).results]

    assert delete() == [68]                                   # NON_EMPTY_GROUP
    client.call(LEAVE, 2, group_id="g", member_id=member.member_id)
    assert "g" in wire.log.list_groups()
    assert delete() == [NONE]
    assert "g" not in wire.log.list_groups()
    assert delete() == [69]                                   # GROUP_ID_NOT_FOUND
    assert joined(client).error_code == NONE                  # a new group of that id
