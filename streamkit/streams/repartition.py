"""``group_by`` and ``through``: continue a stream on another topic.

``stream.group_by(TaxiRide.vendorId)`` writes every event, with its new key, to the
internal topic ``<app id>-<name>-repartition`` and returns the stream of that topic, so
the agent goes on with each event on the partition that owns its new key (and a table
updated there is partitioned by that key). The moving is done a whole batch at a time
by a task of its own; the source offsets are committed only after the batch is written.

This is the ``Repartition`` of a worker (``StreamContext.repartition``);
``agent.test_context()`` has its own, which keeps the event in place.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from streamkit.errors import ImproperlyConfigured
from streamkit.names import REPARTITION, derived_topic_name
from streamkit.streams.operators import TICK
from streamkit.streams.stream import Stream
from streamkit.types import OutgoingRecord

if TYPE_CHECKING:
    from streamkit.streams.stream import _Operators
    from streamkit.topics import Topic

logger = logging.getLogger("streamkit.streams")


def key_function(key: Any) -> tuple[Callable[[Any], Any], str]:
    """A callable that picks the new key from a value, and a name for it."""
    field = getattr(key, "field", None)
    if isinstance(field, str):
        return attrgetter(field), field
    if callable(key):
        return key, getattr(key, "__name__", "key")
    raise ImproperlyConfigured(
        f"group_by({key!r}): expected a Record field (like TaxiRide.vendorId) "
        "or a callable of the value")


class Repartitioner:
    """``group_by`` and ``through`` in a worker: each event goes to the other topic,
    and the agent goes on with the stream the fetcher feeds from it. ``internal_topic``
    creates (and records) a repartition topic; ``partitions_of`` counts a topic's
    partitions."""

    def __init__(self, internal_topic: Callable[..., Topic],
                 partitions_of: Callable[[Topic], int]) -> None:
        self._internal_topic = internal_topic
        self._partitions_of = partitions_of

    def group_by(self, parent: _Operators, key: Any, *, name: str | None,
                 partitions: int | None) -> Stream:
        root = parent.root
        pick_key, key_name = key_function(key)
        if name is None:
            name = f"{root.channel.name}-{key_name}"
        source = root.channel
        topic_name = derived_topic_name(root.context.app_id, name, REPARTITION,
                                        what="group_by name")
        topic = self._internal_topic(topic_name,
                                     partitions=partitions or self._partitions_of(source),
                                     value_type=source.value_type,
                                     value_serializer=source.value_serde.serializer)
        return _continue_on(parent, topic, pick_key)

    def through(self, parent: _Operators, channel: Topic) -> Stream:
        return _continue_on(parent, channel, None)


def _continue_on(parent: _Operators, topic: Topic, pick_key: Callable[[Any], Any] | None
                 ) -> Stream:
    root = parent.root
    context = root.context
    # an agent restarted after a crash calls group_by again: keep the first one
    existing = root.continuations.get(topic.name)
    if existing is not None:
        return existing
    stream = root.continuations[topic.name] = context.add_stream(topic, root.index,
                                                                 root.agent)
    name = f"repartition {root.channel.name} -> {topic.name}"
    if parent is root:
        root.consumed_by_repartition = True
        context.spawn(name, _move_batches, root, topic, pick_key)
    else:
        context.spawn(name, _move_values, parent, topic, pick_key)
    return stream


async def _move_batches(root: Stream, topic: Topic,
                        pick_key: Callable[[Any], Any] | None) -> None:
    output = root.context.sender.buffer
    dump_key = _cached_encoder(topic.key_serde.dumps)
    async for batch in root.batches():
        messages = batch.messages
        if pick_key is None:
            records = [OutgoingRecord(m.key, m.value, m.headers, m.timestamp, None)
                       for m in messages]
        else:
            try:
                records = [OutgoingRecord(dump_key(pick_key(v)), m.value, m.headers,
                                          m.timestamp, None)
                           for v, m in zip(batch.values, messages, strict=True)]
            except Exception:  # noqa: BLE001 - the user's key function; see one by one
                records = _records_one_by_one(batch.values, messages, pick_key, dump_key)
        output.extend(topic.name, records)


def _cached_encoder(dumps: Callable[[Any], bytes | None]) -> Callable[[Any], bytes | None]:
    """``dumps`` remembering the bytes of keys seen before (new keys repeat: vendors,
    locations)."""
    cache: dict[tuple[type, Any], bytes | None] = {}

    def dump_key(key: Any) -> bytes | None:
        typed = (type(key), key)  # 1, 1.0 and True are equal keys but encode apart
        try:
            return cache[typed]
        except KeyError:
            pass
        except TypeError:  # an unhashable key
            return dumps(key)
        if len(cache) > 10_000:
            cache.clear()
        encoded = cache[typed] = dumps(key)
        return encoded
    return dump_key


def _records_one_by_one(values: list[Any], messages: list[Any],
                        pick_key: Callable[[Any], Any],
                        dump_key: Callable[[Any], Any]) -> list[OutgoingRecord]:
    records = []
    for value, m in zip(values, messages, strict=True):
        try:
            records.append(OutgoingRecord(dump_key(pick_key(value)), m.value, m.headers,
                                          m.timestamp, None))
        except Exception as exc:  # noqa: BLE001 - the user's key function: logged, skipped
            _log_key_error(m, value, exc)
    return records


def _log_key_error(m: Any, value: Any, exc: Exception) -> None:
    logger.error("group_by: cannot take the key of %s[%d]@%d (%r): %s; event skipped",
                 m.topic, m.partition, m.offset, value, exc)


async def _move_values(parent: _Operators, topic: Topic,
                       pick_key: Callable[[Any], Any] | None) -> None:
    root = parent.root
    output = root.context.sender.buffer
    dump_key = topic.key_serde.dumps
    async for value in parent:
        if value is TICK:
            continue
        event = root.current_event()
        if event is None:
            continue
        m = event.message
        try:
            raw_key = m.key if pick_key is None else dump_key(pick_key(value))
        except Exception as exc:  # noqa: BLE001 - the user's key function: logged, skipped
            _log_key_error(m, value, exc)
            continue
        output.append(topic.name, OutgoingRecord(raw_key, m.value, m.headers,
                                                 m.timestamp, None), want_result=False)
