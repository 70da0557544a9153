"""Topics as an app sees them, and the app's buffered producer.

A ``Topic`` names one or more broker topics and how their keys and values are encoded.
Sending comes in two speeds:

- ``await topic.send(...)`` writes the record now and returns its ``RecordMetadata``;
- ``topic.send_soon(...)``, ``event.forward(...)`` and an agent's sinks append to the
  app's ``OutputBuffer`` and return a ``PendingSend`` at once. The buffer is written in
  one broker call per topic when it fills, every few milliseconds, and always before
  offsets are committed, so nothing an agent sent is lost by at-least-once processing.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Sequence
from datetime import timedelta
from typing import Any

from streamkit.clients import RecordBuffer, write_each
from streamkit.errors import ImproperlyConfigured
from streamkit.monitor import Monitor
from streamkit.serializers import Serde, codecs
from streamkit.types import Headers, Message, OutgoingRecord, RecordMetadata

#: ``produce(topic, records, acks)``: write records, return where they landed; ``acks``
#: None means the app's ``producer_acks``
ProduceFn = Callable[[str, Sequence[OutgoingRecord], Any], Sequence[RecordMetadata]]
#: ``create(name, partitions, config, replicas)``: create a topic if it does not exist;
#: ``partitions`` None means the app's ``topic_partitions``
CreateFn = Callable[[str, "int | None", dict[str, str], int], None]
TimestampExtractor = Callable[[Message, Any], float]


def _seconds_to_ms(value: float | timedelta | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    return int(round(value * 1000))


def normalize_headers(headers: Any) -> Headers:
    """Headers as Kafka's list of ``(str, bytes)`` pairs, from a dict or pairs whose
    values may be str."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(str(k), v if isinstance(v, bytes) else str(v).encode()) for k, v in items]


class JSONOrBytes:
    """The codec of untyped keys and values: JSON in, JSON out; bytes that are not
    JSON come through as bytes (a plain producer's key ``b"a"`` is not an error)."""

    name = "json"

    def __init__(self) -> None:
        self._json = codecs.get("json")
        self.dumps = self._json.dumps

    def loads(self, data: bytes) -> Any:
        try:
            # digits alone, the common key (an id): the int JSON reads, without the
            # JSON decoder (a leading zero is not a JSON number: those stay bytes)
            if type(data) is bytes and data.isdigit() and (data[0] != 48 or
                                                           len(data) == 1):
                return int(data)
            return self._json.loads(data)
        except ValueError:
            return data


JSON_OR_BYTES = JSONOrBytes()


class PendingSend:
    """A record waiting in the output buffer. ``await`` it for its ``RecordMetadata``
    (awaiting writes the buffer out now if it has not been written yet)."""

    __slots__ = ("_buffer", "metadata")

    def __init__(self, buffer: OutputBuffer) -> None:
        self._buffer = buffer
        self.metadata: RecordMetadata | None = None

    def resolve(self, metadata: RecordMetadata) -> None:
        self.metadata = metadata

    def fail(self, error: BaseException) -> None:
        """Nothing to do: a failed write keeps the record in the buffer (it is
        written again at the next flush) and raises to whoever flushed."""

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        if self.metadata is None:
            self._buffer.flush()
        assert self.metadata is not None
        return self.metadata
        yield  # pragma: no cover  (makes this a generator)


class OutputBuffer:
    """Records the app will send, grouped per topic, written in batches through the
    sender (one ``produce`` call per topic)."""

    def __init__(self, sender: Sender, batch_size: int = 1000) -> None:
        self._sender = sender
        self._batch_size = batch_size
        self._records = RecordBuffer()
        self.sent_total = 0
        #: called when a record comes into the empty buffer (the worker's flush timer
        #: starts then, so an idle worker has no timer running)
        self.on_first_record: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def append(self, topic: str, record: OutgoingRecord, want_result: bool = True
               ) -> PendingSend | None:
        pending = PendingSend(self) if want_result else None
        records = self._records
        records.add(topic, record, pending)
        count = len(records)
        if count >= self._batch_size:
            self.flush()
        elif count == 1 and self.on_first_record is not None:
            self.on_first_record()
        return pending

    def extend(self, topic: str, records: list[OutgoingRecord]) -> None:
        """Queue many records at once (no ``PendingSend`` for them)."""
        if not records:
            return
        was_empty = not self._records
        self._records.extend(topic, records)
        if len(self._records) >= self._batch_size:
            self.flush()
        elif was_empty and self.on_first_record is not None:
            self.on_first_record()

    def flush(self) -> None:
        """Write every buffered record (one ``produce`` call per topic). If a write
        fails, the records not written stay in the buffer and the error is raised."""
        if not self._records:
            return
        taken = self._records.take()
        for i, (topic, records, waiting) in enumerate(taken):
            try:
                write_each([(topic, records, waiting)], self._sender.send)
            except BaseException:
                self._records.put_back(taken[i:])
                raise
            self.sent_total += len(records)


class Sender:
    """The app's one way to the broker: every record it writes (sends, forwards, sinks,
    dead letters, changelog records, repartitioned events) goes through ``produce``,
    and ``buffer`` batches those that need not be written at once.

    The app builds it with the broker's produce at its ``producer_acks``; the worker
    routes it into its transaction under ``exactly_once``, and ``agent.test_context()``
    into a memory broker (``route``). Topics are created on first use through
    ``create``."""

    def __init__(self, produce: ProduceFn, create: CreateFn, monitor: Monitor,
                 batch_size: int = 1000) -> None:
        self.produce = produce
        self.create = create
        self.monitor = monitor
        self.buffer = OutputBuffer(self, batch_size)
        self._created: set[str] = set()

    def send(self, topic: str, records: Sequence[OutgoingRecord], acks: Any = None
             ) -> Sequence[RecordMetadata]:
        """Write ``records`` now; return their metadata."""
        metadata = self.produce(topic, records, acks)
        self.monitor.on_send(topic, len(records))
        return metadata

    def ensure_topic(self, name: str, partitions: int | None, config: dict[str, str],
                     replicas: int) -> None:
        """Create topic ``name`` as declared, once (a first send must not create it with
        the broker's defaults)."""
        if name not in self._created:
            self.create(name, partitions, config, replicas)
            self._created.add(name)

    def route(self, produce: ProduceFn, create: CreateFn | None = None
              ) -> tuple[ProduceFn, CreateFn]:
        """Send through ``produce`` (and create topics through ``create``) from now on;
        returns the previous pair, to route back. Buffered records are written first,
        where they were meant to go."""
        self.buffer.flush()
        previous = (self.produce, self.create)
        self.produce = produce
        if create is not None:
            self.create = create
            self._created.clear()
        return previous


class SentMessage(RecordMetadata):
    """What a send's ``callback`` gets: the record's ``RecordMetadata``, which also
    answers the calls Faust's callbacks make on their ``FutureMessage``
    (``result()``, ``done()``, ``exception()``)."""

    __slots__ = ()

    def result(self) -> RecordMetadata:
        """The metadata (Faust: ``fut.result()``)."""
        return RecordMetadata(*self)

    def done(self) -> bool:
        """Always True: the record is written."""
        return True

    def exception(self) -> None:
        """Always None: a failed send raises to the sender instead."""
        return None


async def call_back(callback: Callable[[SentMessage], Any] | None,
                    metadata: RecordMetadata) -> None:
    """Call a send's ``callback`` with what was sent (awaiting it if it is async)."""
    if callback is not None:
        result = callback(SentMessage(*metadata))
        if inspect.isawaitable(result):
            await result


def refuse_schema(schema: Any) -> None:
    """Faust's ``schema=``: there is no Schema class here."""
    if schema is not None:
        raise ImproperlyConfigured(
            "schema= is not supported: a topic's key_type, value_type, key_serializer "
            "and value_serializer say what a faust.Schema would")


class Declared:
    """What ``declare()`` returns: the work is done already, and awaiting it returns
    at once, so Faust's ``await topic.declare()`` and a plain call both work."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # (a generator that ends at once)

    def __repr__(self) -> str:
        return "<Declared>"


DECLARED = Declared()


class Topic:
    """One or more broker topics with their key and value types.

    Created with ``app.topic(name, ...)``; see DESIGN.md for the arguments.
    """

    def __init__(self, *names: str, sender: Sender,
                 serializers: tuple[str, str] = ("json", "json"),
                 open_stream: Callable[[Topic], Any] | None = None,
                 key_type: Any = None, value_type: Any = None,
                 key_serializer: str | None = None, value_serializer: str | None = None,
                 partitions: int | None = None, retention: float | timedelta | None = None,
                 compacting: bool | None = None, deleting: bool | None = None,
                 replicas: int | None = None, config: dict[str, Any] | None = None,
                 timestamp_extractor: TimestampExtractor | None = None,
                 internal: bool = False, acks: Any = None, pattern: Any = None,
                 schema: Any = None) -> None:
        """``sender`` writes its records; ``serializers`` are the app's default key and
        value serializers; ``open_stream`` makes a stream of it (``topic.stream()``).
        Faust's ``pattern`` and ``schema`` are refused unless None."""
        if pattern is not None:
            raise ImproperlyConfigured(
                "app.topic(pattern=) is not supported: name the topics (a "
                "streamkit.Consumer can subscribe to a pattern)")
        refuse_schema(schema)
        if not names:
            raise ImproperlyConfigured("app.topic() needs at least one topic name")
        self.topics: tuple[str, ...] = tuple(names)
        self.key_type = key_type
        self.value_type = value_type
        default_key, default_value = serializers
        self.key_serializer = key_serializer or default_key
        self.value_serializer = value_serializer or default_value
        self.key_serde = self._serde(
            key_type, key_serializer, _default_key_serializer(key_type, default_key),
            is_key=True)
        self.value_serde = self._serde(
            value_type, value_serializer,
            _default_value_serializer(value_type, default_value), is_key=False)
        #: whether every key decodes (untyped keys: JSON, else the bytes themselves), so
        #: a stream may decode them only when they are asked for
        self.keys_cannot_fail = self.key_serde.codec is JSON_OR_BYTES
        self.partitions = partitions
        self.replicas = replicas
        self.retention = retention
        self.compacting = compacting
        self.deleting = deleting
        self.config = {k: str(v) for k, v in (config or {}).items()}
        self.timestamp_extractor = timestamp_extractor
        self.internal = internal
        self.acks = acks
        self._sender = sender
        self._open_stream = open_stream
        self._other_serdes: dict[tuple[Any, bool], Serde] = {}

    def __repr__(self) -> str:
        return f"<Topic {', '.join(self.topics)}>"

    def _serde(self, type_: Any, explicit: str | None, default: str | None, *,
               is_key: bool) -> Serde:
        if type_ is None and explicit is None and default == "json":
            # no type: JSON when the bytes are JSON, the bytes themselves otherwise
            return Serde(None, JSON_OR_BYTES)
        serde = Serde(type_, explicit or default)
        bind = getattr(serde.codec, "bind", None)
        if bind is not None:
            # schema-registry codecs register under <topic>-key / <topic>-value
            serde = Serde(type_, bind(self.topics[0], is_key=is_key))
        return serde

    @property
    def name(self) -> str:
        """The first (usually only) topic name."""
        return self.topics[0]

    def get_topic_name(self) -> str:
        """Faust's name for ``.name``."""
        return self.topics[0]

    # -- declaring ---------------------------------------------------------------
    def broker_config(self) -> dict[str, str]:
        """The Kafka topic configs this topic is created with."""
        config = dict(self.config)
        retention_ms = _seconds_to_ms(self.retention)
        if retention_ms is not None:
            config.setdefault("retention.ms", str(retention_ms))
        policies = []
        if self.compacting:
            policies.append("compact")
        if self.deleting or (self.compacting and self.retention is not None):
            policies.append("delete")
        if policies:
            config.setdefault("cleanup.policy", ",".join(policies))
        return config

    def declare(self) -> Declared:
        """Create the topics on the broker if they do not exist yet, now. The result
        may be awaited (Faust's ``await topic.declare()``) or dropped."""
        for name in self.topics:
            self._sender.create(name, self.partitions, self.broker_config(),
                                self.replicas or 1)
        return DECLARED

    def maybe_declare(self) -> Declared:
        """Create the topics unless this app created them already, now; awaitable,
        as :meth:`declare`."""
        for name in self.topics:
            self._sender.ensure_topic(name, self.partitions, self.broker_config(),
                                      self.replicas or 1)
        return DECLARED

    def _declare_once(self) -> None:
        # a first send creates the topic as declared, not with the broker's defaults
        self._sender.ensure_topic(self.name, self.partitions, self.broker_config(),
                                  self.replicas or 1)

    # -- encoding ----------------------------------------------------------------
    def prepare(self, key: Any, value: Any, headers: Any = None,
                timestamp: float | None = None, partition: int | None = None, *,
                key_serializer: Any = None, value_serializer: Any = None
                ) -> OutgoingRecord:
        """An ``OutgoingRecord`` with key and value encoded by this topic's serdes (or
        by the serializers given, with this topic's key and value types)."""
        key_serde = self.key_serde if key_serializer is None else self.serde_for(
            key_serializer, is_key=True)
        value_serde = self.value_serde if value_serializer is None else self.serde_for(
            value_serializer, is_key=False)
        return OutgoingRecord(
            key_serde.dumps(key) if key is not None else None,
            value_serde.dumps(value) if value is not None else None,
            normalize_headers(headers),
            int(timestamp * 1000) if timestamp is not None else None,
            partition,
        )

    def serde_for(self, serializer: Any, *, is_key: bool) -> Serde:
        """The key or value serde, or with ``serializer`` (a send's own
        ``key_serializer``/``value_serializer``) one of this topic's type with that
        serializer, made once."""
        if serializer is None:
            return self.key_serde if is_key else self.value_serde
        type_ = self.key_type if is_key else self.value_type
        try:
            return self._other_serdes[serializer, is_key]
        except KeyError:
            pass
        except TypeError:  # unhashable codec object: not kept
            return self._serde(type_, serializer, None, is_key=is_key)
        serde = self._other_serdes[serializer, is_key] = self._serde(
            type_, serializer, None, is_key=is_key)
        return serde

    # -- sending -----------------------------------------------------------------
    async def send(self, *, key: Any = None, value: Any = None, headers: Any = None,
                   timestamp: float | None = None, partition: int | None = None,
                   key_serializer: Any = None, value_serializer: Any = None,
                   callback: Callable[[SentMessage], Any] | None = None,
                   force: bool = False, schema: Any = None) -> RecordMetadata:
        """Send one record now; returns where it landed once the broker acknowledged.

        Faust's options: ``key_serializer``/``value_serializer`` encode this record
        with other serializers; ``callback`` is called (and awaited if it is async)
        with a :class:`SentMessage` once the record is written; ``force`` changes
        nothing (a send is written now anyway); ``schema`` must be None."""
        refuse_schema(schema)
        record = self.prepare(key, value, headers, timestamp, partition,
                              key_serializer=key_serializer,
                              value_serializer=value_serializer)
        self._declare_once()
        (meta,) = self._sender.send(self.name, [record], self.acks)
        await call_back(callback, meta)
        return meta

    def send_soon(self, *, key: Any = None, value: Any = None, headers: Any = None,
                  timestamp: float | None = None, partition: int | None = None,
                  key_serializer: Any = None, value_serializer: Any = None
                  ) -> PendingSend:
        """Queue one record in the app's output buffer (written within milliseconds,
        and before the next commit). Returns a ``PendingSend``."""
        record = self.prepare(key, value, headers, timestamp, partition,
                              key_serializer=key_serializer,
                              value_serializer=value_serializer)
        self._declare_once()
        pending = self._sender.buffer.append(self.name, record)
        assert pending is not None
        return pending

    def send_raw_soon(self, record: OutgoingRecord) -> PendingSend:
        """Queue an already encoded record."""
        self._declare_once()
        pending = self._sender.buffer.append(self.name, record)
        assert pending is not None
        return pending

    # -- consuming ---------------------------------------------------------------
    def source(self, name: str) -> Topic:
        """The topic whose types decode messages of topic ``name`` (this one; a
        stream-stream join's sides decode their own)."""
        return self

    def join(self, other: Topic, *, within: float | timedelta | None = None,
             before: float | timedelta | None = None,
             after: float | timedelta | None = None, grace: float | timedelta = 0,
             how: str = "inner", name: str | None = None) -> TopicJoin:
        """A stream-stream join of this topic (the left side) with ``other``, for an
        agent: it gets ``(left, right)`` for each pair of records with equal keys
        whose timestamps are close: a left record at t joins right records at
        ``t - before <= t' <= t + after`` (``within`` sets both; seconds or a
        timedelta). ``how``: "inner", "left" (``(left, None)`` for a left record
        with no match, once its window has closed) or "outer" (either side None).
        ``grace``: how long after its window a record may still arrive. See
        docs/joins.md, "Stream-stream joins"."""
        return TopicJoin(self, other, within=within, before=before, after=after,
                         grace=grace, how=how, name=name)

    def stream(self) -> Any:
        """A new ``Stream`` over this topic (agents get one automatically)."""
        if self._open_stream is None:
            raise ImproperlyConfigured(f"{self!r} was not declared by an app: it has no "
                                       "streams")
        return self._open_stream(self)

    def __aiter__(self) -> Any:  # pragma: no cover - convenience, as Faust allows
        return self.stream().__aiter__()


def _default_key_serializer(key_type: Any, app_default: str) -> str:
    if key_type in (str, bytes):
        return "raw"
    return app_default


def _default_value_serializer(value_type: Any, app_default: str) -> str | None:
    from streamkit.models import Record
    if isinstance(value_type, type) and issubclass(value_type, Record):
        return None  # the Record's own serializer
    if value_type in (str, bytes):
        return "raw"
    return app_default


#: the kinds of stream-stream join
STREAM_JOIN_KINDS = ("inner", "left", "outer")


def _join_ms(what: str, value: float | timedelta | None) -> int | None:
    ms = _seconds_to_ms(value)
    if ms is not None and ms < 0:
        raise ImproperlyConfigured(f"join({what}={value!r}): must not be negative")
    return ms


class TopicJoin(Topic):
    """Two topics joined by key within a time window (``left.join(right, ...)``):
    the channel of an agent that gets ``(left, right)`` pairs. Each side's messages
    are decoded with that side's types; the pairing itself is done by the app's
    join buffer (``streamkit.tables.join_buffer``) under the agent's stream."""

    def __init__(self, left: Topic, right: Topic, *, within: float | timedelta | None,
                 before: float | timedelta | None, after: float | timedelta | None,
                 grace: float | timedelta, how: str, name: str | None) -> None:
        if not isinstance(right, Topic) or isinstance(right, TopicJoin) \
                or isinstance(left, TopicJoin):
            raise ImproperlyConfigured(f"{left!r}.join({right!r}): a stream-stream join "
                                       "joins two topics (app.topic(...))")
        if len(left.topics) != 1 or len(right.topics) != 1 or left.name == right.name:
            raise ImproperlyConfigured(f"{left!r}.join({right!r}): each side of a "
                                       "stream-stream join is one topic, and they differ")
        if how not in STREAM_JOIN_KINDS:
            raise ImproperlyConfigured(f"{left.name}.join({right.name}, how={how!r}): a "
                                       "stream-stream join is 'inner', 'left' or 'outer'")
        within_ms = _join_ms("within", within)
        before_ms = _join_ms("before", before)
        after_ms = _join_ms("after", after)
        before_ms = within_ms if before_ms is None else before_ms
        after_ms = within_ms if after_ms is None else after_ms
        if before_ms is None or after_ms is None:
            raise ImproperlyConfigured(
                f"{left.name}.join({right.name}): give within= (or before= and after=): "
                "how far apart in time two records may be to join")
        super().__init__(left.name, right.name,
                         sender=left._sender,  # noqa: SLF001 - a Topic's own
                         open_stream=left._open_stream,  # noqa: SLF001
                         key_type=left.key_type,
                         key_serializer=left.key_serializer, value_type=left.value_type,
                         value_serializer=left.value_serializer,
                         partitions=left.partitions or right.partitions,
                         replicas=left.replicas)
        self.left = left
        self.right = right
        self.before_ms = before_ms
        self.after_ms = after_ms
        self.grace_ms = _join_ms("grace", grace) or 0
        self.how = how
        #: the join's name: its window buffers are the table of that name
        self.join_name = name or f"{left.name}-{right.name}-join"

    def __repr__(self) -> str:
        return f"<TopicJoin {self.left.name} {self.how} {self.right.name}>"

    def source(self, name: str) -> Topic:
        return self.right if name == self.right.name else self.left

    def declare(self) -> Declared:
        self.left.declare()
        return self.right.declare()

    def maybe_declare(self) -> Declared:
        self.left.maybe_declare()
        return self.right.maybe_declare()

    def _declare_once(self) -> None:
        raise ImproperlyConfigured(f"{self!r} is read by an agent, not written: send to "
                                   f"{self.left.name!r} or {self.right.name!r}")
