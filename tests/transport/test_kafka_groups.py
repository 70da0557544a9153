"""Consumer groups on kafka:// beyond the contract of test_group_contract.py: the
member is assigned its partitions inside ``poll``, so ``on_assign`` can seek the member
it was given to (the embedded log assigns inside ``group_consumer()``, before the
caller holds the member)."""
from __future__ import annotations

import pytest

from streamkit.types import TopicPartition

from .groups import SESSION, _fill, _group, _poll_until

pytestmark = pytest.mark.kafka
BROKERS = ("kafka",)     # the ``broker`` fixture of conftest.py is a KafkaBroker here


def test_seek_from_on_assign_sets_the_start_offset(broker, topic_name):
    _fill(broker, topic_name, n=8, partitions=2)
    tp0 = TopicPartition(topic_name, 0)
    holder = {}

    def on_assign(tps):
        if tp0 in tps:
            holder["consumer"].seek(tp0, 3)

    consumer = broker.group_consumer(_group(), [topic_name], session_timeout=SESSION,
                                     on_assign=on_assign)
    holder["consumer"] = consumer
    [got] = _poll_until([consumer], lambda g: len(g[0]) == 5)
    assert sorted((m.partition, m.offset) for m in got) == \
        [(0, 3), (1, 0), (1, 1), (1, 2), (1, 3)]
    with pytest.raises(Exception, match=r"not assigned"):
        consumer.seek(TopicPartition(topic_name, 9), 0)
    consumer.close()
