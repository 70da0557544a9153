"""Small valid requests of every served version of the transactional APIs, for a
transactional id no producer initialised, and what their answers must say: for
tests/wire/test_protocol.py's every-version test and its fuzz tests."""
from __future__ import annotations

from typing import Any

from tests.wire.conftest import kio_body, kio_module

ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
TXN_APIS = frozenset({ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN,
                      TXN_OFFSET_COMMIT})
INVALID_PRODUCER_EPOCH, PRODUCER_FENCED = 47, 90


def txn_request_body(api_key: int, version: int) -> Any:
    """A request of transactional id ``tx<version>`` (never initialised: the producer
    does not hold it) on topic "orders"."""
    cls, module = kio_module(api_key, version)
    ids = dict(transactional_id=f"tx{version}", producer_id=1, producer_epoch=0)
    if api_key == ADD_PARTITIONS_TO_TXN:
        topic = module.AddPartitionsToTxnTopic(name="orders", partitions=(0, 1))
        return kio_body(cls, **{f"v3_and_below_{k}": v for k, v in ids.items()},
                        v3_and_below_topics=(topic,))
    if api_key == ADD_OFFSETS_TO_TXN:
        return kio_body(cls, group_id=f"g{version}", **ids)
    if api_key == END_TXN:
        return kio_body(cls, committed=True, **ids)
    assert api_key == TXN_OFFSET_COMMIT
    part = kio_body(module.TxnOffsetCommitRequestPartition, partition_index=0,
                    committed_offset=1, committed_leader_epoch=-1, committed_metadata=None)
    topic = module.TxnOffsetCommitRequestTopic(name="orders", partitions=(part,))
    return kio_body(cls, group_id=f"g{version}", generation_id=-1, member_id="",
                    group_instance_id=None, topics=(topic,), **ids)


def check_txn_response(api_key: int, version: int, response: Any) -> None:
    """Assert the answer to ``txn_request_body(api_key, version)``: the producer is
    fenced, with the code the version knows (PRODUCER_FENCED from v2, KIP-588;
    TxnOffsetCommit has none)."""
    fenced = PRODUCER_FENCED if version >= 2 and api_key != TXN_OFFSET_COMMIT \
        else INVALID_PRODUCER_EPOCH
    if api_key == ADD_PARTITIONS_TO_TXN:
        (topic,) = response.results_by_topic_v3_and_below
        assert [(r.partition_index, r.partition_error_code)
                for r in topic.results_by_partition] == [(0, fenced), (1, fenced)]
    elif api_key == TXN_OFFSET_COMMIT:
        (topic,) = response.topics
        assert [(p.partition_index, p.error_code) for p in topic.partitions] == \
            [(0, fenced)]
    else:
        assert response.error_code == fenced
