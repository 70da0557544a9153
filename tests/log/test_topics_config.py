"""Topic names, topic configs, replication factor and broker URLs."""
from __future__ import annotations

import os

import pytest

import streamkit
from streamkit.errors import InvalidBrokerURL, InvalidConfig, InvalidTopicName
from streamkit.transport import connect
from streamkit.types import OutgoingRecord, TopicPartition

HOSTILE = ["../x", "a/b", "", ".", "..", "x" * 250, "tópico", "a b", "a\x00b", "..\\x",
           "/etc", "~root", "a:b", "__consumer_groups"]


def _tree(path):
    return sorted(os.path.relpath(os.path.join(d, f), path)
                  for d, dirs, files in os.walk(path) for f in files + dirs)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_topic_names_refused_before_touching_disk(tmp_path, name):
    root = tmp_path / "log"
    broker = connect(f"log://{root}")
    before = _tree(tmp_path)
    with pytest.raises(InvalidTopicName):
        broker.create_topic(name)
    with pytest.raises(InvalidTopicName):
        broker.produce(name, [OutgoingRecord(None, b"v")])
    with pytest.raises(InvalidTopicName):
        broker.fetch(TopicPartition(name, 0), 0)
    with pytest.raises(InvalidTopicName):
        broker.group_consumer("g", [name])
    with pytest.raises(InvalidTopicName):
        streamkit.Admin(broker=broker).create_topic(name)
    assert _tree(tmp_path) == before
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize("name", ["a", "A-z_0.9", "x" * 249, "...", "-_-", ".hidden"])
def test_kafka_legal_names_accepted(broker, name):
    broker.create_topic(name, partitions=1)
    assert name in broker.list_topics()


def test_replication_factor_above_one_points_to_kafka(broker):
    with pytest.raises(InvalidConfig, match="kafka://"):
        broker.create_topic("t", replication_factor=3)
    with pytest.raises(InvalidConfig, match="kafka://"):
        broker.create_topic("t", config={"replication.factor": "2"})
    with pytest.raises(InvalidConfig, match="kafka://"):
        streamkit.Admin(broker=broker).create_topic("t", replication_factor=2)
    assert "t" not in broker.list_topics()
    broker.create_topic("t", replication_factor=1)


@pytest.mark.parametrize("key,value", [
    ("cleanup.policy", "shred"), ("retention.ms", "soon"), ("retention.ms", "-5"),
    ("segment.bytes", "0"), ("message.timestamp.type", "WallClock"),
    ("retention.bytes", "1e9"), ("no.such.config", "1")])
def test_bad_config_refused_naming_key_and_value(broker, key, value):
    with pytest.raises(InvalidConfig) as info:
        broker.create_topic("t", config={key: value})
    assert key in str(info.value) and value in str(info.value)
    assert "t" not in broker.list_topics()


def test_config_values_normalised_and_kafka_keys_accepted(broker):
    broker.create_topic("t", config={"retention.ms": 60000, "cleanup.policy": "delete, compact",
                                     "min.insync.replicas": "1"})
    config = broker.describe_topic("t").config
    assert config["retention.ms"] == "60000"
    assert config["cleanup.policy"] == "compact,delete"
    assert config["min.insync.replicas"] == "1"


def test_log_url_forms(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    connect("log://", datadir=tmp_path / "data").create_topic("a")
    assert (tmp_path / "data" / "log" / "a" / "topic.json").exists()
    connect("log://rel/dir").create_topic("b")
    assert (tmp_path / "rel" / "dir" / "b" / "topic.json").exists()
    connect(f"log://{tmp_path}/abs").create_topic("c")
    assert (tmp_path / "abs" / "c" / "0" / f"{0:020d}.log").exists()
    with pytest.raises(InvalidBrokerURL):
        connect("nolog")
    with pytest.raises(InvalidBrokerURL):
        connect("zip://x")


def test_broker_config_gives_defaults_for_new_topics(tmp_path):
    broker = connect(f"log://{tmp_path}", config={"segment.bytes": 4096,
                                                  "bootstrap.servers": "ignored"})
    broker.create_topic("t")
    assert broker.describe_topic("t").config["segment.bytes"] == "4096"
