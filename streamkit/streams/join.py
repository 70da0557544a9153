"""``stream.join(table)``: enrich each event with a table's current value.

Kafka Streams' KStream-KTable and KStream-GlobalKTable join: each stream event looks up
the table's value at the moment the agent reaches it, and the agent gets
``(value, table_value)``. Table updates emit nothing. ``how="inner"`` drops an event
the table has no value for; ``how="left"`` gives it with ``None``. An event whose
lookup key is None (no key, or ``on=`` gave None) or whose value is None is not joined:
it is dropped, as Kafka Streams drops it, for both kinds. Every dropped event is
counted in the monitor (``Monitor.join_drops``, by table) and still counts as done, so
its offset is committed like any other.

The lookup key is the event's key for a partitioned ``Table``, which must then have as
many partitions as the stream's topic (the worker checks once the tables are open:
``check_co_partitioned``), since the table holds a key in the partition of the event
that wrote it. With a ``GlobalTable`` (every worker holds all of it) ``on=`` may pick
the lookup key from the value: a Record field or a callable of the value.

With ``as_of=True`` the table must be versioned (``app.Table(..., versioned=...)``):
each event looks up the value that was valid at the event's timestamp
(``VersionedJoinTable.get_as_of``), as Kafka Streams 3.5+ joins a versioned table, so
reprocessing old events gives the values of their time, not the latest.

The table is only read through ``JoinTable``: this layer never imports the tables.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from streamkit.errors import ImproperlyConfigured
from streamkit.streams.event import Event
from streamkit.streams.operators import TICK
from streamkit.streams.repartition import key_function
from streamkit.streams.stream import DerivedStream

if TYPE_CHECKING:
    from streamkit.monitor import Monitor
    from streamkit.streams.stream import Stream, _Operators
    from streamkit.topics import Topic

JOIN_KINDS = ("inner", "left")


class JoinTable(Protocol):
    """What a stream-table join reads of a table."""

    name: str
    is_global: bool

    def get(self, key: Any, default: Any = None) -> Any: ...

    def partition_count(self) -> int: ...


class VersionedJoinTable(JoinTable, Protocol):
    """What a stream-table join with ``as_of=True`` reads: a versioned table."""

    def get_as_of(self, key: Any, timestamp_ms: int, default: Any = None) -> Any: ...


def join(parent: _Operators, table: JoinTable, on: Any, how: str, as_of: bool = False
         ) -> DerivedStream:
    """See ``_Operators.join`` and the module docstring."""
    if how not in JOIN_KINDS:
        raise ImproperlyConfigured(f"join(how={how!r}): a stream-table join is "
                                   f"'inner' or 'left'")
    if not callable(getattr(table, "get", None)) or not hasattr(table, "is_global"):
        raise ImproperlyConfigured(f"join({table!r}): expected an app.Table or "
                                   "app.GlobalTable")
    if as_of and not callable(getattr(table, "get_as_of", None)):
        raise ImproperlyConfigured(
            f"join({table.name}, as_of=True): table {table.name!r} is not versioned; "
            f"declare it with app.Table({table.name!r}, versioned=timedelta(hours=1)) "
            "to keep its history, or join without as_of=")
    root = parent.root
    monitor = root.context.monitor
    inner = how == "inner"
    if on is not None:
        if not table.is_global:
            raise ImproperlyConfigured(
                f"join({table.name}, on={on!r}): a partitioned Table is looked up by the "
                "event's key; use an app.GlobalTable for on=, or group_by the stream by "
                "that field first and join without on=")
        pick, _ = key_function(on)
        return DerivedStream(root, lambda: _join_on(parent, table, pick, inner, monitor))
    if not table.is_global:
        root.context.joins[(root.channel.name, table.name)] = (root.channel, table)
    lookup = _as_of_event(root, cast("VersionedJoinTable", table)) if as_of else table.get
    return DerivedStream(root, lambda: _join_by_key(parent, lookup, table.name, inner,
                                                    monitor))


async def _join_by_key(parent: _Operators, lookup: Callable[[Any], Any], name: str,
                       inner: bool, monitor: Monitor) -> AsyncIterator[Any]:
    """Each event with ``lookup(its key)``: the table's value (``table.get``), or
    the value valid at the event's time (``as_of``)."""
    drops = monitor.join_drops
    async for item in parent.items():
        if item is TICK:
            yield item
            continue
        key, value = item
        if key is None or value is None or (type(value) is Event and value.value is None):
            drops[name] += 1
            continue
        found = lookup(key)
        if found is None and inner:
            drops[name] += 1
            continue
        yield value, found


def _as_of_event(root: Stream, table: VersionedJoinTable) -> Callable[[Any], Any]:
    """The lookup of an ``as_of`` join: the value valid at the event's timestamp."""
    get_as_of = table.get_as_of
    return lambda key: get_as_of(key, _event_timestamp_ms(root))


def _event_timestamp_ms(root: Stream) -> int:
    """The timestamp (ms) of the event ``root`` is at: the one being joined."""
    batch = root.batch
    if batch is None or not batch.messages:
        raise RuntimeError(f"{root!r}: a join with as_of=True has no event in hand")
    messages = batch.messages
    return messages[min(root.cursor, len(messages) - 1)].timestamp


async def _join_on(parent: _Operators, table: JoinTable, pick: Callable[[Any], Any],
                   inner: bool, monitor: Monitor) -> AsyncIterator[Any]:
    get = table.get
    drops = monitor.join_drops
    name = table.name
    async for value in parent:
        if value is TICK:
            yield value
            continue
        record = value.value if type(value) is Event else value
        key = None if record is None else pick(record)
        if key is None:
            drops[name] += 1
            continue
        found = get(key)
        if found is None and inner:
            drops[name] += 1
            continue
        yield value, found


def check_co_partitioned(joins: Iterable[tuple[Topic, JoinTable]],
                         partition_count: Callable[[str], int | None]) -> None:
    """Refuse to start a stream-table join whose stream topic and (partitioned) table
    have different partition counts: the event of a key would look in a partition of
    the table that does not hold it."""
    for topic, table in joins:
        partitions = partition_count(topic.name)
        if partitions is not None and partitions != table.partition_count():
            raise ImproperlyConfigured(
                f"stream-table join: topic {topic.name!r} has {partitions} partitions and "
                f"table {table.name!r} has {table.partition_count()}; they must be "
                f"co-partitioned: group_by the stream first (stream.group_by(key, "
                f"partitions={table.partition_count()})), give the table "
                f"partitions={partitions}, or join an app.GlobalTable")
