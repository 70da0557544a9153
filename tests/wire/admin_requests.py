"""Raw requests of the admin APIs (CreatePartitions, DescribeConfigs, AlterConfigs,
IncrementalAlterConfigs) for tests/wire/test_protocol.py's every-version test and its
fuzz frames, and what their answers must be. The test creates topic ``orders`` with 3
partitions first."""
from __future__ import annotations

import datetime
from typing import Any

from tests.wire.conftest import Wire, kio_body, kio_module

DESCRIBE_CONFIGS, ALTER_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER_CONFIGS = 32, 33, 37, 44
ADMIN_APIS = (DESCRIBE_CONFIGS, ALTER_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER_CONFIGS)
TOPIC, BROKER = 2, 4


def admin_body(api_key: int, version: int) -> Any:
    """A small valid request of one admin API version, about topic ``orders``."""
    cls, module = kio_module(api_key, version)
    if api_key == CREATE_PARTITIONS:
        topic = module.CreatePartitionsTopic(name="orders", count=5, assignments=None)
        return cls(topics=(topic,), timeout=datetime.timedelta(seconds=5),
                   validate_only=False)
    if api_key == DESCRIBE_CONFIGS:
        resources = (
            module.DescribeConfigsResource(resource_type=TOPIC, resource_name="orders",
                                           configuration_keys=None),
            module.DescribeConfigsResource(resource_type=BROKER, resource_name="0",
                                           configuration_keys=("broker.id",)))
        return kio_body(cls, resources=resources, include_synonyms=True,
                        include_documentation=False)
    if api_key == ALTER_CONFIGS:
        config = module.AlterableConfig(name="retention.ms", value="1234")
    else:
        config = module.AlterableConfig(name="retention.ms", value="1234",
                                        config_operation=0)         # SET
    resource = module.AlterConfigsResource(resource_type=TOPIC, resource_name="orders",
                                           configs=(config,))
    return cls(resources=(resource,), validate_only=False)


def check_admin_response(wire: Wire, api_key: int, response: Any) -> None:
    """Assert what the server answered to ``admin_body``, and what the log holds."""
    if api_key == CREATE_PARTITIONS:
        (result,) = response.results
        assert (result.name, result.error_code) == ("orders", 0)
        assert wire.log.partition_count("orders") == 5
    elif api_key == DESCRIBE_CONFIGS:
        topic, broker = response.results
        assert (topic.error_code, topic.resource_name) == (0, "orders")
        configs = {c.name: (c.value, c.config_source) for c in topic.configs}
        assert configs["retention.ms"] == ("604800000", 5)              # a default
        assert configs["cleanup.policy"] == ("delete", 5)
        assert [s.name for s in topic.configs[0].synonyms] == [topic.configs[0].name]
        assert (broker.error_code, [(c.name, c.value) for c in broker.configs]) == \
            (0, [("broker.id", "0")])
    else:
        (result,) = response.responses
        assert (result.error_code, result.resource_name) == (0, "orders")
        assert wire.log.topic_config("orders") == {"retention.ms": "1234"}
