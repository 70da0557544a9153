"""``App(...)`` takes the settings a Faust script passes: with Faust's meaning where
streamkit has one, kept and without effect where it has none, and a misspelt keyword is
still a TypeError that names it."""
from __future__ import annotations

import itertools
import logging
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest
from click.testing import CliRunner

import streamkit
from streamkit.cli import cli
from streamkit.errors import BrokerError, ImproperlyConfigured
from streamkit.worker import Worker

_ids = itertools.count()


def new_app(**settings: object) -> streamkit.App:
    name = f"faustconf{next(_ids)}"
    settings.setdefault("broker", f"memory://{name}")
    settings.setdefault("store", "memory://")
    return streamkit.App(name, **settings)


#: what a Faust script commonly passes (faust.App's keyword arguments)
FAUST_SCRIPT = dict(
    version=1, autodiscover=False, origin="proj.app", datadir=Path("faust-data"),
    store="rocksdict://", value_serializer="json", key_serializer="json",
    topic_partitions=8, topic_replication_factor=1, topic_allow_declare=True,
    topic_disable_leader=True, table_cleanup_interval=30.0, table_standby_replicas=1,
    stream_buffer_maxsize=4096, stream_wait_empty=True, broker_commit_interval=2.8,
    broker_commit_every=10_000, broker_credentials=None, web_enabled=False,
    web_port=6067, web_host="localhost", web_bind="0.0.0.0", logging_config=None,
    loghandlers=[], debug=False, processing_guarantee="at_least_once",
    consumer_auto_offset_reset="latest", producer_acks=-1, producer_linger_ms=5,
    producer_max_batch_size=16384, broker_session_timeout=60.0,
    broker_max_poll_records=500, timezone="UTC", tabledir="faust-tables",
    worker_redirect_stdouts=False, loop=None,
)


def test_a_faust_scripts_settings_are_accepted_with_faust_meaning() -> None:
    app = new_app(**FAUST_SCRIPT)
    conf = app.conf
    # same meaning, under streamkit's name or in streamkit's form
    assert conf.commit_interval == 2.8
    assert conf.session_timeout == 60.0
    assert conf.max_poll_records == 500
    assert conf.producer_acks == "all"           # Faust's -1
    assert conf.store == "rocksdb://"            # Faust's RocksDB store
    assert conf.datadir == "faust-data"
    assert conf.web_host == "0.0.0.0"            # web_bind is the address bound
    assert conf.consumer_auto_offset_reset == "latest"
    assert conf.topic_partitions == 8 and conf.producer_linger_ms == 5
    assert conf.timezone == ZoneInfo("UTC")
    assert app.crontab("0 * * * *")(lambda: None) and app.timers[-1].timezone == ZoneInfo("UTC")
    app.timer(60.0, on_leader=True, traced=False, max_drift_correction=0.2)(lambda: None)
    assert app.timers[-1].on_leader
    # no effect here: kept, and listed
    assert set(conf.ignored) == {
        "topic_disable_leader", "table_cleanup_interval", "table_standby_replicas",
        "stream_buffer_maxsize", "stream_wait_empty", "broker_commit_every",
        "producer_max_batch_size", "worker_redirect_stdouts", "loop"}


def test_version_makes_a_new_app_id_as_in_faust() -> None:
    app = streamkit.App("orders", version=3, broker="memory://v3", store="memory://")
    assert (app.conf.id, app.conf.name) == ("orders-v3", "orders")
    table = app.Table("totals")
    assert table.changelog_topic == "orders-v3-totals-changelog"
    assert app.datadir == Path("stores") / "orders-v3"
    assert streamkit.App("orders", version=1, broker="memory://v1").conf.id == "orders"
    custom = streamkit.App("orders", version=2, id_format="{id}.{self.version}",
                           broker="memory://v2")
    assert custom.conf.id == "orders.2"
    with pytest.raises(ImproperlyConfigured, match="version=0"):
        streamkit.App("orders", version=0)


def test_a_misspelt_setting_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match=r"'topic_partition'.*did you mean 'topic_partitions'"):
        new_app(topic_partition=3)
    with pytest.raises(TypeError, match="'no_such_thing'"):
        new_app(no_such_thing=1)
    with pytest.raises(TypeError, match="'commit_interval' and its Faust name "
                                        "'broker_commit_interval'"):
        new_app(commit_interval=1.0, broker_commit_interval=2.0)
    with pytest.raises(ImproperlyConfigured, match="own classes"):
        new_app(Stream=object)


def test_faust_broker_forms_and_credentials() -> None:
    app = new_app(broker=["kafka://a:9092", "kafka://b:9093"])
    assert app.conf.broker == "kafka://a:9092,b:9093"
    assert new_app(broker="aiokafka://k:9092").conf.broker == "kafka://k:9092"

    @dataclass
    class SASLCredentials:            # the shape of faust.SASLCredentials
        username: str
        password: str
        mechanism: str = "SCRAM-SHA-256"
        ssl_context: object = None

    conf = new_app(broker_credentials=SASLCredentials("u", "p"),
                   broker_config={"client.id": "mine"}).conf
    assert conf.broker_config == {"security.protocol": "SASL_PLAINTEXT",
                                  "sasl.mechanism": "SCRAM-SHA-256",
                                  "sasl.username": "u", "sasl.password": "p",
                                  "client.id": "mine"}
    with pytest.raises(ImproperlyConfigured, match="broker_credentials"):
        new_app(broker_credentials="secret")


def test_env_prefix_names_the_environment_variables(monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    monkeypatch.setenv("MYAPP_TOPIC_PARTITIONS", "7")
    assert new_app(env_prefix="MYAPP_").conf.topic_partitions == 7
    assert new_app().conf.topic_partitions == 4


def test_logging_config_and_loghandlers_are_applied() -> None:
    handler = logging.NullHandler()
    conf = new_app(loghandlers=[handler], logging_config={
        "version": 1, "disable_existing_loggers": False,
        "loggers": {"faustconf.quiet": {"level": "ERROR"}}}).conf
    root = logging.getLogger()
    try:
        conf.apply_logging()
        assert handler in root.handlers
        assert logging.getLogger("faustconf.quiet").level == logging.ERROR
    finally:
        root.removeHandler(handler)


@pytest.mark.anyio
async def test_topic_allow_declare_false_creates_no_topic() -> None:
    app = new_app(topic_allow_declare=False, web_enabled=False)

    @app.agent(app.topic("orders"))
    async def process(stream):
        async for _ in stream:
            pass
    with pytest.raises(ImproperlyConfigured, match="'orders' does not exist"):
        await Worker(app, install_signal_handlers=False).run_async()
    assert "orders" not in app.broker.list_topics()


@pytest.mark.anyio
async def test_topic_replication_factor_is_the_default_of_created_topics() -> None:
    app = new_app(topic_replication_factor=3, web_enabled=False)
    assert app.topic("orders").replicas == 3
    assert app.topic("other", replicas=1).replicas == 1
    # the embedded log keeps one copy: it refuses, pointing to kafka://
    with pytest.raises(BrokerError, match="kafka://"):
        app.topic("orders").declare()


@pytest.mark.anyio
async def test_tabledir_is_where_table_stores_go(tmp_path: Path) -> None:
    app = new_app(tabledir="faust-tables", store="rocksdb://", datadir=str(tmp_path),
                  broker=f"log://{tmp_path}/log", web_enabled=False, topic_partitions=1)
    counts = app.Table("counts", default=int)

    @app.agent(app.topic("clicks", partitions=1))
    async def count(stream):
        async for value in stream:
            counts[value] += 1
    await app.topic("clicks").send(value="x")
    worker = Worker(app, install_signal_handlers=False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(worker.run_async)
        with anyio.fail_after(10):
            while counts.get("x") != 1:
                await anyio.sleep(0.01)
        worker.stop()
    assert list((tmp_path / app.conf.id / "faust-tables").glob("counts-0*"))
    with pytest.raises(ImproperlyConfigured, match="must be relative"):
        new_app(tabledir="/abs")


def test_autodiscover_imports_the_packages_modules(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "faustproj"
    (package / "orders").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "orders" / "__init__.py").write_text("")
    (package / "app.py").write_text(textwrap.dedent('''
        import streamkit
        app = streamkit.App("faustproj", broker="memory://faustproj", autodiscover=True,
                            origin="faustproj")
    '''))
    (package / "orders" / "agents.py").write_text(textwrap.dedent('''
        from faustproj.app import app

        @app.agent(app.topic("orders"))
        async def process(stream):
            async for _ in stream:
                pass
    '''))
    (package / "test_app.py").write_text("raise RuntimeError('tests are not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    try:
        result = CliRunner().invoke(cli, ["agents", "faustproj.app"])
        assert result.exit_code == 0, result.output
        assert "@process" in result.output           # found in faustproj/orders/agents.py
        listed = streamkit.App("faustlist", broker="memory://faustlist",
                               autodiscover=["faustproj.orders.agents"])
        listed.discover()
        assert "faustproj.orders.agents" in sys.modules
        bare = streamkit.App("faustbare", broker="memory://faustbare", autodiscover=True)
        with pytest.raises(ImproperlyConfigured, match="origin"):
            bare.discover()
    finally:
        for name in [m for m in sys.modules if m.startswith("faustproj")]:
            del sys.modules[name]


def test_the_commit_interval_is_shorter_under_exactly_once_unless_given(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 143: 1 s by default, 0.1 s under exactly_once (as Kafka Streams); a
    value given, by argument, Faust's name or the environment, is kept."""
    monkeypatch.delenv("STREAMKIT_COMMIT_INTERVAL", raising=False)
    assert streamkit.App("ci-alo").conf.commit_interval == 1.0
    assert streamkit.App("ci-eos", processing_guarantee="exactly_once"
                         ).conf.commit_interval == 0.1
    assert streamkit.App("ci-given", processing_guarantee="exactly_once",
                         commit_interval=2.5).conf.commit_interval == 2.5
    assert streamkit.App("ci-faust", processing_guarantee="exactly_once",
                         broker_commit_interval=3.0).conf.commit_interval == 3.0
    monkeypatch.setenv("STREAMKIT_COMMIT_INTERVAL", "4")
    assert streamkit.App("ci-env", processing_guarantee="exactly_once"
                         ).conf.commit_interval == 4.0
