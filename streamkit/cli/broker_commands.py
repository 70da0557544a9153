"""Commands about the broker, no App needed: ``topics``, ``send``, ``tail``, ``groups``.

``--broker`` defaults to ``$STREAMKIT_BROKER`` or ``log://`` and ``--datadir`` to
``$STREAMKIT_DATADIR`` or ``stores``, the same defaults an App has, so running these
in the directory where a worker runs shows that worker's log.
"""
from __future__ import annotations

import io
import json
import select
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from streamkit.cli.output import echo_table
from streamkit.errors import UnknownTopic
from streamkit.types import TopicPartition

if TYPE_CHECKING:
    from streamkit.transport.base import Broker
    from streamkit.types import Message


#: records ``streamkit send TOPIC -`` writes per batch
SEND_BATCH = 1000


def broker_options(fun: Callable[..., Any]) -> Callable[..., Any]:
    """``--broker`` and ``--datadir``, with the App's defaults and environment."""
    fun = click.option("--datadir", envvar="STREAMKIT_DATADIR", default="stores",
                       show_default=True, help="Data root of log:// ($STREAMKIT_DATADIR).")(fun)
    fun = click.option("--broker", "-b", envvar="STREAMKIT_BROKER", default="log://",
                       show_default=True,
                       help="Broker URL: log://, log:///path, kafka://host:port "
                            "($STREAMKIT_BROKER).")(fun)
    return fun


def open_broker(url: str, datadir: str, *, read_only: bool = False) -> Broker:
    """The broker; a read-only command on an embedded log that does not exist says so
    instead of creating an empty one (a typo in --broker or --datadir)."""
    from streamkit.transport import connect
    if read_only and url.startswith("log://"):
        from streamkit.transport.embedded import log_root
        root = log_root(url, datadir)
        if not root.is_dir():
            raise click.ClickException(
                f"no embedded log at {root} (nothing has been written there yet; "
                "check --broker and --datadir)")
    return connect(url, datadir=datadir)


def _require_topic(broker: Broker, topic: str) -> int:
    count = broker.partition_count(topic)
    if count is None:
        raise UnknownTopic(f"no such topic {topic!r} on {broker.url} "
                           f"(topics: {', '.join(sorted(broker.list_topics())) or 'none'})")
    return count


# -- topics ------------------------------------------------------------------------------
@click.group("topics", invoke_without_command=True)
@broker_options
@click.pass_context
def topics(ctx: click.Context, broker: str, datadir: str) -> None:
    """List topics: partitions, start/end offsets, messages, retention, cleanup.policy.

    --broker and --datadir may also follow the subcommand (topics create NAME --broker
    URL); given in both places, the one after the subcommand wins."""
    # (in the object every subcommand shares: a copy of the option after the
    # subcommand overwrites it there, see streamkit.cli.shared_options)
    ctx.ensure_object(dict).update(broker=broker, datadir=datadir)
    if ctx.invoked_subcommand is not None:
        return
    conn = open_broker(broker, datadir, read_only=True)
    try:
        rows = []
        for name in sorted(conn.list_topics()):
            info = conn.describe_topic(name)
            messages = sum(e - s for s, e in zip(info.start_offsets, info.end_offsets, strict=True))
            rows.append((name, info.partitions,
                         " ".join(map(str, info.start_offsets)),
                         " ".join(map(str, info.end_offsets)), messages,
                         _retention(info.config.get("retention.ms")),
                         info.config.get("cleanup.policy", "delete")))
        orphans = conn.orphan_topics() if hasattr(conn, "orphan_topics") else []
    finally:
        conn.close()
    echo_table(["topic", "partitions", "start offsets", "end offsets", "messages",
                "retention", "cleanup.policy"], rows, title=f"Topics on {broker}")
    for name in orphans:
        click.echo(f"warning: folder {name!r} holds partitions of a topic whose topic.json "
                   f"is lost; `streamkit log repair {name}` rebuilds it", err=True)


def _retention(ms: str | None) -> str:
    if ms is None or int(ms) < 0:
        return "forever"
    seconds = int(ms) / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@topics.command("create")
@click.argument("name")
@click.option("--partitions", "-p", type=int, default=1, show_default=True)
@click.option("--config", "-c", "configs", multiple=True, metavar="KEY=VALUE",
              help="A topic config (retention.ms, cleanup.policy, ...); repeatable.")
@click.pass_obj
def topics_create(obj: dict[str, Any], name: str, partitions: int,
                  configs: tuple[str, ...]) -> None:
    """Create topic NAME."""
    config = _configs(configs)
    conn = open_broker(obj["broker"], obj["datadir"])
    try:
        conn.create_topic(name, partitions=partitions, config=config, exist_ok=False)
    finally:
        conn.close()
    click.echo(f"created topic {name!r} with {partitions} partition(s)")


def _configs(items: tuple[str, ...]) -> dict[str, str]:
    config = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: write KEY=VALUE", param_hint="--config")
        config[key.strip()] = value.strip()
    return config


@topics.command("alter")
@click.argument("name")
@click.option("--config", "-c", "configs", multiple=True, metavar="KEY=VALUE",
              required=True, help="A topic config to set; repeatable.")
@click.pass_obj
def topics_alter(obj: dict[str, Any], name: str, configs: tuple[str, ...]) -> None:
    """Set topic configs of NAME on the embedded log (as kafka-configs --alter)."""
    config = _configs(configs)
    conn = open_broker(obj["broker"], obj["datadir"])
    try:
        if not hasattr(conn, "alter_topic_config"):
            raise click.ClickException(
                f"{obj['broker']}: `topics alter` sets configs of the embedded log; on "
                "Kafka use kafka-configs.sh --alter")
        _require_topic(conn, name)
        conn.alter_topic_config(name, config)
    finally:
        conn.close()
    click.echo(f"topic {name!r}: set " + ", ".join(f"{k}={v}" for k, v in config.items()))


@topics.command("delete")
@click.argument("name")
@click.pass_obj
def topics_delete(obj: dict[str, Any], name: str) -> None:
    """Delete topic NAME and its messages."""
    conn = open_broker(obj["broker"], obj["datadir"])
    try:
        _require_topic(conn, name)
        conn.delete_topic(name)
    finally:
        conn.close()
    click.echo(f"deleted topic {name!r}")


# -- send, tail --------------------------------------------------------------------------
@click.command("send")
@click.argument("topic")
@click.argument("value")
@click.option("--key", "-k", default=None, help="The record key (sent as UTF-8 bytes).")
@click.option("--partition", "-p", type=int, default=None,
              help="Send to this partition instead of the key's.")
@broker_options
def send(topic: str, value: str, key: str | None, partition: int | None, broker: str,
         datadir: str) -> None:
    """Send VALUE to TOPIC (created if missing); VALUE '-' sends each stdin line.

    Ctrl-C stops reading stdin: the lines read so far are sent, then it prints
    "interrupted after N messages, last offset TOPIC[P]@O" and exits 130."""
    from streamkit.clients import Producer
    conn = open_broker(broker, datadir)
    sent = _Sent()
    interrupted = False
    try:
        count = conn.partition_count(topic)
        if partition is not None and count is not None and not 0 <= partition < count:
            raise click.BadParameter(f"topic {topic!r} has partitions 0..{count - 1}",
                                     param_hint="--partition")
        chunks = _stdin_chunks(sys.stdin) if value == "-" else iter([([value], True)])
        # piped lines go in batches (one log write each); typed lines one by one
        batch = 1 if value == "-" and sys.stdin.isatty() else SEND_BATCH
        with Producer(conn, linger_ms=60_000, batch_size=batch) as producer:
            pending: list[Any] = []
            try:
                for lines, more_waiting in chunks:
                    for text in lines:
                        pending.append(producer.send(topic, value=text, key=key,
                                                     partition=partition))
                        if len(pending) >= batch:
                            sent.report(pending)
                            pending = []
                    if pending and not more_waiting:
                        # a slow writer at the other end of the pipe: send and print
                        # what came instead of waiting for a full batch
                        producer.flush()
                        sent.report(pending)
                        pending = []
            except KeyboardInterrupt:
                interrupted = True      # what was read goes out before we stop
            producer.flush()
            sent.report(pending)
    finally:
        conn.close()
    if interrupted:
        click.echo(f"interrupted after {sent.count} messages, last offset "
                   f"{sent.last or 'none'}", err=True)
        raise SystemExit(130)       # 128 + SIGINT, as a shell reports Ctrl-C


def _stdin_chunks(stdin: Any) -> Iterator[tuple[list[str], bool]]:
    """The lines of ``stdin`` as they come: the complete lines of each read, and
    whether more input was already waiting after it (a file: always; a pipe: when its
    writer is ahead). A terminal, or a stream that is not a file, gives a line a read."""
    try:
        fd = stdin.fileno()
        raw = stdin.buffer
        typed = stdin.isatty()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        fd, raw, typed = -1, None, True
    if typed or raw is None:
        for line in stdin:
            yield [line.rstrip("\n")], True
        return
    waiting = select.poll()
    waiting.register(fd, select.POLLIN)
    encoding, errors = stdin.encoding or "utf-8", stdin.errors or "strict"
    rest = b""
    while data := raw.read1(65536):       # what is there, up to 64 KiB; waits for some
        lines = (rest + data).split(b"\n")
        rest = lines.pop()                  # (a line not complete yet)
        # decoded line by line: a character split between two reads stays whole
        yield ([line.removesuffix(b"\r").decode(encoding, errors) for line in lines],
               bool(waiting.poll(0)))
    if rest:
        yield [rest.removesuffix(b"\r").decode(encoding, errors)], False


class _Sent:
    """The messages ``send`` has printed: how many, and the last one's position."""

    def __init__(self) -> None:
        self.count = 0
        self.last: str | None = None

    def report(self, futures: list[Any]) -> None:
        """Wait for ``futures`` and print ``topic[partition]@offset`` for each."""
        lines = []
        for future in futures:
            meta = future.get()
            lines.append(f"{meta.topic}[{meta.partition}]@{meta.offset}")
        if lines:
            click.echo("\n".join(lines))
            self.count += len(lines)
            self.last = lines[-1]


@click.command("tail")
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest message.")
@click.option("--group", "-g", default=None,
              help="Read as a member of this consumer group (and commit).")
@click.option("-n", "count", type=int, default=None, help="Stop after N messages.")
@click.option("--format", "fmt", type=click.Choice(["json", "raw"]), default="json",
              show_default=True, help="json: one object per message; raw: the value.")
@click.option("--timeout", type=float, default=None,
              help="Stop when no message came for this many seconds (with --wait: "
                   "also give up waiting for the topic after as long).")
@click.option("--wait", "-w", is_flag=True,
              help="Wait for TOPIC to be created (and the embedded log), then tail it "
                   "from its first message.")
@broker_options
def tail(topic: str, from_beginning: bool, group: str | None, count: int | None,
         fmt: str, timeout: float | None, wait: bool, broker: str, datadir: str) -> None:
    """Print the messages of TOPIC as they arrive (Ctrl-C stops). Only reads: works on
    a read-only data directory (except --group, which commits)."""
    from streamkit.clients import Consumer
    consumer = None
    printed: dict[TopicPartition, int] = {}
    conn: Broker | None = None
    try:
        if wait:
            conn, created = _wait_for_topic(broker, datadir, topic, timeout)
            # a topic created after tail started holds only messages that came after
            # it started: all of them are "new"
            from_beginning = from_beginning or created
        else:
            conn = open_broker(broker, datadir, read_only=True)
            _require_topic(conn, topic)
        consumer = Consumer(topic, broker=conn, group_id=group,
                            auto_offset_reset="earliest" if from_beginning else "latest",
                            enable_auto_commit=False,
                            consumer_timeout_ms=None if timeout is None else timeout * 1000)
        seen = 0
        for message in consumer:
            click.echo(format_message(message, fmt))
            # commit only what was printed: the group resumes after the last line shown
            printed[message.tp] = message.offset + 1
            seen += 1
            if group is not None and seen % 100 == 0:
                consumer.commit(printed)
            if count is not None and seen >= count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        if consumer is not None:
            if group is not None and printed:
                consumer.commit(printed)
            consumer.close(autocommit=False)
        if conn is not None:
            conn.close()


#: seconds between two looks for a topic ``tail --wait`` waits for
WAIT_POLL = 0.2


def _wait_for_topic(url: str, datadir: str, topic: str, timeout: float | None
                    ) -> tuple[Broker, bool]:
    """The broker once ``topic`` exists on it, and whether it had to be waited for.
    Creates nothing: on log:// it waits for the log's folder too. ``timeout``: give up
    (one-line error) after that many seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    conn: Broker | None = None
    waited = False
    try:
        while True:
            if conn is None and _log_exists(url, datadir):
                conn = open_broker(url, datadir, read_only=True)
            if conn is not None and conn.partition_count(topic) is not None:
                return conn, waited
            if not waited:
                click.echo(f"waiting for topic {topic!r} on {url}...", err=True)
                waited = True
            if deadline is not None and time.monotonic() >= deadline:
                raise UnknownTopic(f"no topic {topic!r} on {url} after waiting "
                                   f"{timeout:g} s")
            time.sleep(WAIT_POLL)
    except BaseException:
        if conn is not None:
            conn.close()
        raise


def _log_exists(url: str, datadir: str) -> bool:
    """Whether the broker is there to be opened without creating anything (a log://
    folder may not exist yet; other brokers are servers)."""
    if not url.startswith("log://"):
        return True
    from streamkit.transport.embedded import log_root
    return log_root(url, datadir).is_dir()


def format_message(message: Message, fmt: str) -> str:
    """One message as a JSON line (values that are JSON stay JSON) or as raw text."""
    if fmt == "raw":
        return _text(message.value) or ""
    when = datetime.fromtimestamp(message.timestamp / 1000, tz=UTC)
    return json.dumps({
        "topic": message.topic, "partition": message.partition, "offset": message.offset,
        "timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "key": _decoded(message.key), "value": _decoded(message.value),
        **({"headers": {k: _text(v) for k, v in message.headers}}
           if message.headers else {}),
    }, ensure_ascii=False)


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    return data.decode("utf-8", errors="backslashreplace")


def _decoded(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return _text(data)


# -- groups ------------------------------------------------------------------------------
@click.command("groups")
@broker_options
def groups(broker: str, datadir: str) -> None:
    """List consumer groups: partition, committed offset, end offset, lag."""
    conn = open_broker(broker, datadir, read_only=True)
    try:
        rows: list[tuple[object, ...]] = []
        for group_id in sorted(conn.list_groups()):
            offsets = conn.group_offsets(group_id)
            if not offsets:
                rows.append((group_id, None, None, None, None, None))
            for o in offsets:
                rows.append((group_id, o.topic, o.partition, o.committed, o.end_offset,
                             o.lag))
    finally:
        conn.close()
    echo_table(["group", "topic", "partition", "committed", "end offset", "lag"], rows,
               title=f"Consumer groups on {broker}")


COMMANDS: list[click.Command] = [topics, send, tail, groups]

