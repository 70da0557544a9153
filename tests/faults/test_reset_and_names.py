"""Fault-injection review, issue 13: findings 4, 5 and 7.

4. ``reset shop`` must delete exactly shop's internal topics and stores, never those
   of an app whose id merely starts with ``shop-``.
5. App ids follow Kafka's topic-name rule, and ``reset`` never deletes a path outside
   the data directory.
7. Derived topic names (dead-letter, changelog, repartition, agent topics) longer than
   Kafka's 249 characters are shortened, deterministically and validly, so a worker
   never crash-loops on a name.

Everything runs on the real embedded log under ``tmp_path`` with RocksDB tables, real
in-process workers and the real ``streamkit`` command line (click's runner).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.cli.loading import load_app
from streamkit.errors import ImproperlyConfigured
from streamkit.types import TopicPartition

from .workers import run_worker

pytestmark = pytest.mark.anyio

KAFKA_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}\Z")

APP_SOURCE = '''
import streamkit

app = streamkit.App({app_id!r}, broker={broker!r}, datadir={datadir!r},
                    store="rocksdb://", web_enabled=False, commit_interval=0.05,
                    topic_partitions=2)


class Order(streamkit.Record, serializer="json"):
    customer: str
    amount: int


orders = app.topic({topic!r}, key_type=str, value_type=Order, partitions={partitions})
per_customer = app.Table({table!r}, default=int)
{extra}

@app.agent(orders)
async def count(stream):
    async for order in stream.group_by(Order.customer, name={group_by!r}):
        per_customer[order.customer] += order.amount
'''


def write_app(tmp_path: Path, module: str, app_id: str, *, topic: str = "orders",
              table: str = "per_customer", group_by: str | None = None,
              partitions: int = 2, extra: str = "") -> Path:
    """An app script counting order amounts per customer (through group_by)."""
    datadir = tmp_path / "stores"
    path = tmp_path / f"{module}.py"
    path.write_text(APP_SOURCE.format(
        app_id=app_id, broker=f"log://{datadir / 'log'}", datadir=str(datadir),
        topic=topic, table=table, group_by=group_by, partitions=partitions, extra=extra))
    return path


def table_contents(app: streamkit.App, name: str) -> dict:
    return dict(app.tables[name].items())


def send_orders(tmp_path: Path, topic: str, orders: list[tuple[str, int]]) -> None:
    producer = streamkit.Producer(broker=f"log://{tmp_path / 'stores' / 'log'}")
    for customer, amount in orders:
        producer.send(topic, key=customer.encode(),
                      value=json.dumps({"customer": customer, "amount": amount}).encode())
    producer.flush()
    producer.close()


def admin(tmp_path: Path) -> streamkit.Admin:
    return streamkit.Admin(broker=f"log://{tmp_path / 'stores' / 'log'}")


def read_topic(tmp_path: Path, topic: str) -> list[streamkit.Message]:
    """Every record of ``topic``, all partitions, without a consumer group."""
    client = admin(tmp_path)
    try:
        broker = client._broker
        out: list[streamkit.Message] = []
        for p in range(broker.partition_count(topic) or 0):
            out.extend(broker.fetch(TopicPartition(topic, p), 0, 100_000))
        return out
    finally:
        client.close()


def reset(tmp_path: Path, app_file: Path, monkeypatch) -> object:
    """``streamkit reset APP --yes`` as a user runs it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STREAMKIT_DATADIR", str(tmp_path / "stores"))
    monkeypatch.delenv("STREAMKIT_BROKER", raising=False)
    monkeypatch.delenv("STREAMKIT_DEBUG", raising=False)
    return CliRunner().invoke(cli, ["reset", str(app_file), "--yes"])


# -- finding 4: reset deletes exactly what the app owns ---------------------------------
async def test_reset_shop_leaves_the_changelog_and_table_of_app_shop_eu(
        tmp_path, monkeypatch):
    shop_file = write_app(tmp_path, "shop_app", "shop")
    eu_file = write_app(tmp_path, "shop_eu_app", "shop-eu", topic="orders-eu")
    send_orders(tmp_path, "orders", [("alice", 1), ("bob", 2), ("alice", 3)])
    send_orders(tmp_path, "orders-eu", [("carol", 10), ("dave", 20), ("carol", 30)])
    shop, eu = load_app(str(shop_file)), load_app(str(eu_file))
    await run_worker(shop, lambda w: table_contents(shop, "per_customer") ==
                     {"alice": 4, "bob": 2} and w.committed_offsets())
    await run_worker(eu, lambda w: table_contents(eu, "per_customer") ==
                     {"carol": 40, "dave": 20} and w.committed_offsets())
    shop_topics = {"shop-per_customer-changelog", "shop-orders-customer-repartition"}
    eu_topics = {"shop-eu-per_customer-changelog", "shop-eu-orders-eu-customer-repartition"}
    client = admin(tmp_path)
    assert shop_topics | eu_topics <= set(client.list_topics())
    eu_changelog = [(m.key, m.value)
                    for m in read_topic(tmp_path, "shop-eu-per_customer-changelog")]
    client.close()

    result = reset(tmp_path, shop_file, monkeypatch)
    assert result.exit_code == 0, result.output

    client = admin(tmp_path)
    topics = set(client.list_topics())
    assert not shop_topics & topics                     # shop's own topics are gone
    assert eu_topics <= topics, result.output          # shop-eu's are all there
    assert "shop" not in client.list_groups() and "shop-eu" in client.list_groups()
    client.close()
    assert [(m.key, m.value) for m in read_topic(tmp_path, "shop-eu-per_customer-changelog")
            ] == eu_changelog
    assert not (tmp_path / "stores" / "shop").exists()
    assert (tmp_path / "stores" / "shop-eu").is_dir()

    # shop-eu restarts with its table whole and counts new orders on top of it
    eu = load_app(str(eu_file))
    send_orders(tmp_path, "orders-eu", [("carol", 5)])
    await run_worker(eu, lambda w: w.ready and table_contents(eu, "per_customer") ==
                     {"carol": 45, "dave": 20})


# -- finding 5: app ids follow Kafka's rule; reset stays inside the data dir -------------
def test_app_ids_outside_kafkas_topic_name_rule_are_refused_at_construction(tmp_path):
    for app_id in ["..", ".", str(tmp_path / "victim"), "my app/../x", "a/b", "a" * 250,
                   "shop!", "log"]:
        with pytest.raises(ImproperlyConfigured) as info:
            streamkit.App(app_id, broker="memory://", store="memory://")
        message = str(info.value)
        assert repr(app_id) in message and "\n" not in message, message
        if app_id != "log":
            assert "[a-zA-Z0-9._-]" in message and "249" in message, message
    for app_id in ["shop", "shop-eu", "taxi.v2", "A_b-1", "a" * 249, "..x"]:
        assert streamkit.App(app_id, broker="memory://").conf.id == app_id


APP_WITHOUT_TABLES = '''
import streamkit

app = streamkit.App({app_id!r}, broker={broker!r}, datadir={datadir!r}, web_enabled=False)
topic = app.topic("events")


@app.agent(topic)
async def echo(stream):
    async for value in stream:
        print(value)
'''


def test_reset_never_deletes_outside_the_data_dir(tmp_path, monkeypatch):
    datadir = tmp_path / "stores"
    sentinel = tmp_path / "sentinel.txt"          # next to the data dir
    sentinel.write_text("keep me")
    victim = tmp_path / "victim"
    (victim / "inner").mkdir(parents=True)
    (victim / "inner" / "file.txt").write_text("keep me too")
    send_orders(tmp_path, "events", [("a", 1)])
    for n, app_id in enumerate(["..", str(victim), "my app/../x"]):
        path = tmp_path / f"bad_id_{n}.py"
        path.write_text(APP_WITHOUT_TABLES.format(
            app_id=app_id, broker=f"log://{datadir / 'log'}", datadir=str(datadir)))
        result = reset(tmp_path, path, monkeypatch)
        assert result.exit_code == 1, result.output
        assert repr(app_id) in result.output and "Traceback" not in result.output
    assert sentinel.read_text() == "keep me"
    assert (victim / "inner" / "file.txt").read_text() == "keep me too"
    client = admin(tmp_path)
    assert "events" in client.list_topics()
    client.close()

    # an app dir that resolves outside the data dir (a symlink) is refused before
    # anything is deleted: its table stores, topics and offsets all stay
    outside = tmp_path / "elsewhere"
    (outside / "tables").mkdir(parents=True)
    (outside / "tables" / "keep.txt").write_text("keep")
    datadir.mkdir(exist_ok=True)
    (datadir / "linked").symlink_to(outside, target_is_directory=True)
    linked = write_app(tmp_path, "linked_app", "linked")
    client = admin(tmp_path)
    client.create_topic("linked-per_customer-changelog", partitions=2)
    client.close()
    result = reset(tmp_path, linked, monkeypatch)
    assert result.exit_code == 1, result.output
    assert "outside" in result.output and "Traceback" not in result.output
    assert (outside / "tables" / "keep.txt").read_text() == "keep"
    client = admin(tmp_path)
    assert "linked-per_customer-changelog" in client.list_topics()
    client.close()


# -- finding 7: derived topic names are shortened, valid and deterministic ---------------
LONG_TOPIC = "orders." + "x" * 233                 # 240 characters, a legal topic name


async def test_an_undecodable_message_on_a_240_character_topic_is_dead_lettered(tmp_path):
    assert len(LONG_TOPIC) == 240
    path = write_app(tmp_path, "torture5_dlq", "torture5", topic=LONG_TOPIC,
                     group_by="by_customer", partitions=1)
    app = load_app(str(path))
    producer = streamkit.Producer(broker=f"log://{tmp_path / 'stores' / 'log'}")
    client = admin(tmp_path)
    client.create_topic(LONG_TOPIC, partitions=1)
    producer.send(LONG_TOPIC, key=b"alice", value=b'{"customer": "alice", "amount": 1}')
    producer.send(LONG_TOPIC, key=b"bob", value=b'{"customer": "bob", "amo')   # broken
    producer.send(LONG_TOPIC, key=b"alice", value=b'{"customer": "alice", "amount": 2}')
    producer.flush()
    producer.close()

    source = TopicPartition(LONG_TOPIC, 0)
    worker = await run_worker(app, lambda w: w.committed_offsets().get(source) == 3
                              and table_contents(app, "per_customer") == {"alice": 3})
    assert app.fetcher.dead_lettered == 1
    dlq = [t for t in client.list_topics() if t.endswith("-dlq")]
    assert len(dlq) == 1, client.list_topics()
    assert KAFKA_TOPIC_NAME.match(dlq[0]) and dlq[0].startswith("torture5-orders.x")
    (dead,) = read_topic(tmp_path, dlq[0])
    assert dead.value == b'{"customer": "bob", "amo'
    assert dict(dead.headers)["streamkit.source.topic"] == LONG_TOPIC.encode()
    committed = {(o.topic, o.partition): o.committed
                 for o in client.group_offsets("torture5")}
    assert committed[(LONG_TOPIC, 0)] == 3 and worker.committed_offsets()[source] == 3
    client.close()


LONG_TABLE = "per_customer_" + "t" * 230            # 243 characters
LONG_GROUP_BY = "by_customer_" + "g" * 230          # 242 characters
LONG_AGENT = "agent_" + "a" * 240                   # 246 characters
EXTRA = f'''
twin_a = app.Table({LONG_TABLE + "_a"!r}, default=int)
twin_b = app.Table({LONG_TABLE + "_b"!r}, default=int)


@app.agent(name={LONG_AGENT!r})
async def long_named(stream):
    async for value in stream:
        pass
'''


async def test_long_table_group_by_and_agent_names_give_valid_distinct_stable_topics(
        tmp_path):
    path = write_app(tmp_path, "torture5_names", "torture5", table=LONG_TABLE,
                     group_by=LONG_GROUP_BY, extra=EXTRA)
    app = load_app(str(path))
    names = {"changelog": app.tables[LONG_TABLE].changelog_topic,
             "twin_a": app.tables[LONG_TABLE + "_a"].changelog_topic,
             "twin_b": app.tables[LONG_TABLE + "_b"].changelog_topic,
             "agent": app.agents[LONG_AGENT].channel.name}
    for what, name in names.items():
        assert KAFKA_TOPIC_NAME.match(name) and name.startswith("torture5-"), (what, name)
    assert names["changelog"].endswith("-changelog")
    assert names["twin_a"] != names["twin_b"]             # share a 243-character prefix
    assert names["twin_a"].endswith("-changelog") and names["twin_b"].endswith("-changelog")

    send_orders(tmp_path, "orders", [("alice", 1), ("bob", 2), ("alice", 3)])
    await run_worker(app, lambda w: table_contents(app, LONG_TABLE) ==
                     {"alice": 4, "bob": 2} and w.committed_offsets())
    client = admin(tmp_path)
    topics = client.list_topics()
    client.close()
    repartition = [t for t in topics if t.endswith("-repartition")]
    assert len(repartition) == 1 and KAFKA_TOPIC_NAME.match(repartition[0])
    assert repartition[0].startswith("torture5-by_customer_g")
    assert set(names.values()) <= set(topics)

    # the same app loaded again derives the same names, so a restart restores the
    # table from the changelog it wrote and goes on with the same repartition topic
    again = load_app(str(path))
    assert {"changelog": again.tables[LONG_TABLE].changelog_topic,
            "twin_a": again.tables[LONG_TABLE + "_a"].changelog_topic,
            "twin_b": again.tables[LONG_TABLE + "_b"].changelog_topic,
            "agent": again.agents[LONG_AGENT].channel.name} == names
    send_orders(tmp_path, "orders", [("bob", 5)])
    await run_worker(again, lambda w: w.ready and table_contents(again, LONG_TABLE) ==
                     {"alice": 4, "bob": 7})
    client = admin(tmp_path)
    assert [t for t in client.list_topics() if t.endswith("-repartition")] == repartition
    client.close()


def test_a_table_name_that_cannot_be_part_of_a_topic_name_is_refused_when_declared():
    app = streamkit.App("torture5", broker="memory://", store="memory://")
    with pytest.raises(ImproperlyConfigured) as info:
        app.Table("rides per vendor", default=int)
    assert "'rides per vendor'" in str(info.value) and "[a-zA-Z0-9._-]" in str(info.value)


def test_reset_refuses_an_app_whose_directory_holds_the_log(tmp_path, monkeypatch):
    # log://<datadir>/<app id>: the app's directory, which reset deletes, is the log
    datadir = tmp_path / "stores"
    log_dir = datadir / "events"
    path = tmp_path / "events_app.py"
    path.write_text(APP_WITHOUT_TABLES.format(
        app_id="events", broker=f"log://{log_dir}", datadir=str(datadir)))
    producer = streamkit.Producer(broker=f"log://{log_dir}")
    producer.send("orders", b"keep")
    producer.send("payments", b"keep")
    producer.flush()
    producer.close()
    result = reset(tmp_path, path, monkeypatch)
    assert result.exit_code == 1, result.output
    assert "lies in its directory" in result.output and "nothing was deleted" in result.output
    client = streamkit.Admin(broker=f"log://{log_dir}")
    assert {"orders", "payments"} <= set(client.list_topics())
    client.close()
