"""Small valid requests of every served version of the group APIs, answered at once
(no member waits on them), and what their answers must say: for
tests/wire/test_protocol.py's every-version test and its fuzz test."""
from __future__ import annotations

import datetime
from typing import Any

from streamkit.wire.consumer_protocol import encode_subscription
from tests.wire.conftest import kio_body, kio_module

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP = 8, 9, 10, 11
HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS = 12, 13, 14, 15, 16
DELETE_GROUPS = 42
GROUP_APIS = frozenset({OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP,
                        HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS,
                        DELETE_GROUPS})
UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND, MEMBER_ID_REQUIRED = 25, 69, 79


def group_request_body(api_key: int, version: int) -> Any:
    """A request of group ``g<version>`` on topic "orders" (3 partitions)."""
    cls, module = kio_module(api_key, version)
    group = f"g{version}"
    if api_key == FIND_COORDINATOR:
        return kio_body(cls, key=group, key_type=0, coordinator_keys=(group,))
    if api_key == JOIN_GROUP:
        protocol = module.JoinGroupRequestProtocol(
            name="range", metadata=encode_subscription(["orders"]))
        return kio_body(cls, group_id=group, member_id="",
                        session_timeout=datetime.timedelta(seconds=1),
                        rebalance_timeout=datetime.timedelta(seconds=1),
                        group_instance_id=None, protocol_type="consumer",
                        protocols=(protocol,), reason=None)
    if api_key in (SYNC_GROUP, HEARTBEAT):
        return kio_body(cls, group_id=group, generation_id=1, member_id="nobody",
                        group_instance_id=None, protocol_type=None, protocol_name=None,
                        assignments=())
    if api_key == LEAVE_GROUP:
        member = kio_body(getattr(module, "MemberIdentity", object), member_id="nobody",
                          group_instance_id=None, reason=None) if version >= 3 else None
        return kio_body(cls, group_id=group, member_id="nobody", members=(member,))
    if api_key == OFFSET_COMMIT:
        part = kio_body(module.OffsetCommitRequestPartition, partition_index=0,
                        committed_offset=1, committed_leader_epoch=-1,
                        committed_metadata=None)
        return kio_body(cls, group_id=group, generation_id_or_member_epoch=-1,
                        member_id="", group_instance_id=None,
                        retention_time=datetime.timedelta(milliseconds=-1),
                        topics=(module.OffsetCommitRequestTopic(name="orders",
                                                                partitions=(part,)),))
    if api_key == OFFSET_FETCH:
        if version >= 8:
            topic = module.OffsetFetchRequestTopics(name="orders", partition_indexes=(0,))
            return kio_body(cls, require_stable=False, groups=(kio_body(
                module.OffsetFetchRequestGroup, group_id=group, member_id=None,
                member_epoch=-1, topics=(topic,)),))
        topic = module.OffsetFetchRequestTopic(name="orders", partition_indexes=(0,))
        return kio_body(cls, group_id=group, topics=(topic,), require_stable=False)
    if api_key == DESCRIBE_GROUPS:
        return kio_body(cls, groups=(group,), include_authorized_operations=False)
    if api_key == DELETE_GROUPS:
        return kio_body(cls, groups_names=(f"never-{version}",))
    assert api_key == LIST_GROUPS
    return kio_body(cls, states_filter=(), types_filter=())


def check_group_response(api_key: int, version: int, response: Any) -> None:
    """Assert the answer to ``group_request_body(api_key, version)``."""
    if api_key == FIND_COORDINATOR:
        found = response.coordinators[0] if version >= 4 else response
        assert (found.error_code, found.node_id) == (0, 0)
    elif api_key == JOIN_GROUP:
        if version >= 4:
            assert response.error_code == MEMBER_ID_REQUIRED and response.member_id
        else:                                   # the only member: its own leader
            assert response.error_code == 0 and response.leader == response.member_id
    elif api_key in (SYNC_GROUP, HEARTBEAT):
        assert response.error_code == UNKNOWN_MEMBER_ID
    elif api_key == LEAVE_GROUP:
        codes = [m.error_code for m in response.members] if version >= 3 \
            else [response.error_code]
        assert codes == [UNKNOWN_MEMBER_ID]
    elif api_key == OFFSET_COMMIT:
        assert [p.error_code for p in response.topics[0].partitions] == [0]
    elif api_key == OFFSET_FETCH:
        topics = response.groups[0].topics if version >= 8 else response.topics
        assert [p.committed_offset for p in topics[0].partitions] == [-1]
    elif api_key == DESCRIBE_GROUPS:
        assert [g.group_state for g in response.groups] == ["Dead"]
    elif api_key == DELETE_GROUPS:
        assert [r.error_code for r in response.results] == [GROUP_ID_NOT_FOUND]
    else:
        assert response.error_code == 0
