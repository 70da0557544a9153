"""The Kafka-protocol TCP server over a ``Broker`` (the embedded log).

One task per connection reads size-prefixed frames and answers each request in order,
as Kafka does on one connection. What a peer sends never stops the server: a frame
that is too large, cut short or not a request of a served version closes that
connection only (logged at debug), and an error while answering is logged and closes
that connection too.
"""
from __future__ import annotations

import base64
import logging
import socket
import struct
import uuid
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus

from streamkit.transport.base import Broker
from streamkit.types import TopicPartition
from streamkit.wire.apis import API_VERSIONS, FETCH, JOIN_GROUP, PRODUCE, SERVED, \
    SYNC_GROUP, TOPIC_IDS, Node, handle, unsupported_version
from streamkit.wire.coordinator import GroupCoordinator
from streamkit.wire.groups import GROUP_HANDLERS
from streamkit.wire.protocol import FRAME_SIZE, FrameError, decode_request, \
    encode_response, peek_header
from streamkit.wire.producers import ProducerState
from streamkit.wire.records import RECORD_HANDLERS, AppendWaiter, fetch, produce
from streamkit.wire.traffic import Traffic
from streamkit.wire.transactions import TXN_HANDLERS, expire_transactions

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTIONS", "WireServer", "cluster_id_for"]

logger = logging.getLogger("streamkit.wire")

#: the default limit on open connections; one more is closed at once
MAX_CONNECTIONS = 1000
#: seconds a connection may go without sending a whole request (Kafka's
#: ``connections.max.idle.ms``, 10 minutes)
IDLE_TIMEOUT = 600.0
#: the most partitions a CreateTopics request may ask for one topic (decision 905)
MAX_PARTITIONS = 1000

#: seconds between looks at whether a client waiting on a JoinGroup or SyncGroup is
#: still connected (a wait for the group can last the rebalance timeout)
PEER_CHECK = 0.2

_SIZE = struct.Struct(">i")
_WAITS_FOR_GROUP = frozenset({JOIN_GROUP, SYNC_GROUP})
#: a look that never blocks, whatever the socket's mode (no MSG_DONTWAIT on Windows,
#: where the socket is non-blocking anyway)
_PEEK = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
_KEY = struct.Struct(">h")
#: the most bytes taken from the socket at a time
_RECEIVE_SIZE = 1 << 20
_CLOSED = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
           anyio.ClosedResourceError, ConnectionError)


def cluster_id_for(name: str) -> str:
    """A cluster id in Kafka's form (22 characters of base64), the same for ``name``
    every time (decision 903)."""
    return base64.urlsafe_b64encode(uuid.uuid5(TOPIC_IDS, name).bytes).decode()[:22]


class WireServer:
    """Serves ``broker`` over the Kafka protocol on ``host:port`` (port 0: a free one,
    see ``port`` once started).

    ``auto_create_topics``: a Metadata request for a missing topic creates it (Kafka's
    ``auto.create.topics.enable``; off by default). ``max_partitions``: the most
    partitions a CreateTopics request may ask for one topic (decision 905).
    ``idle_timeout``: seconds after which a connection that has not sent a whole
    request is closed (so that silent peers do not hold the connection slots).
    ``cluster_id``: what Metadata answers; by default one made from the broker's URL
    (give ``cluster_id_for(<the log's directory>)`` where URLs are alike, as ``log://``
    is for every data directory)."""

    def __init__(self, broker: Broker, *, host: str = "127.0.0.1", port: int = 9092,
                 max_connections: int = MAX_CONNECTIONS, max_frame_size: int = FRAME_SIZE,
                 auto_create_topics: bool = False, max_partitions: int = MAX_PARTITIONS,
                 cluster_id: str | None = None, idle_timeout: float = IDLE_TIMEOUT
                 ) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.max_frame_size = max_frame_size
        self.auto_create_topics = auto_create_topics
        self.max_partitions = max_partitions
        self.idle_timeout = idle_timeout
        self.cluster_id = cluster_id or cluster_id_for(broker.url)
        #: the idempotent producers' ids and sequence numbers, for every connection
        self.producers = ProducerState()
        #: the coordinator of every consumer group (served while ``serve`` runs)
        self.groups = GroupCoordinator(broker)
        #: connections open now, and requests answered since the start
        self.connections = 0
        self.requests = 0
        #: records produced and fetched since the start (the status line's rates)
        self.traffic = Traffic()

    async def serve(self, *, task_status: TaskStatus[Any] = anyio.TASK_STATUS_IGNORED
                    ) -> None:
        """Listen and serve until cancelled; ``task_status.started`` gets the port."""
        try:
            listener = await anyio.create_tcp_listener(local_host=self.host,
                                                       local_port=self.port)
        except OSError as exc:
            # the address is what the user needs to see (the port is taken, or the
            # host is not this machine's)
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self.port}: "
                          f"{exc.strerror or exc}") from None
        async with listener, anyio.create_task_group() as tasks:
            self.port = listener.extra(SocketAttribute.local_port)
            tasks.start_soon(self.groups.run)
            tasks.start_soon(expire_transactions, self.broker)
            task_status.started(self.port)
            await listener.serve(self._connection)

    async def _connection(self, stream: SocketStream) -> None:
        async with stream:
            peer = stream.extra(SocketAttribute.remote_address)
            if self.connections >= self.max_connections:
                logger.debug("connection from %s refused: %d connections are open",
                             peer, self.connections)
                return
            self.connections += 1
            logger.debug("connection from %s", peer)
            try:
                await self._serve_connection(stream)
            except _CLOSED:
                logger.debug("connection from %s closed", peer)
            except FrameError as exc:
                logger.debug("connection from %s closed: %s", peer, exc)
            except Exception:   # a fault answering one peer ends its connection, not the server
                logger.exception("connection from %s closed by an error", peer)
            finally:
                self.connections -= 1

    async def _serve_connection(self, stream: SocketStream) -> None:
        local = stream.extra(SocketAttribute.local_address)
        peer = str(stream.extra(SocketAttribute.remote_address)[0])
        # clients reach this broker again at the address they connected to
        node = Node(self.broker, host=str(local[0]), port=self.port,
                    cluster_id=self.cluster_id, auto_create_topics=self.auto_create_topics,
                    max_partitions=self.max_partitions, producers=self.producers)
        frames = _Frames(stream, self.max_frame_size)
        waiter = AppendWaiter(node)
        try:
            while True:
                frame = None
                with anyio.move_on_after(self.idle_timeout):
                    frame = await frames.next()
                if frame is None:
                    raise FrameError(f"no whole request in {self.idle_timeout:g} s")
                if peek_header(frame)[0] in _WAITS_FOR_GROUP:
                    responses = await self._respond_while_connected(stream, node, frame,
                                                                    waiter, peer)
                else:
                    responses = await self._respond_run(node, frame, frames, waiter, peer)
                if responses:
                    await stream.send(responses)
        finally:
            waiter.close()

    async def _respond_run(self, node: Node, frame: bytes, frames: _Frames,
                           waiter: AppendWaiter, peer: str) -> bytes:
        """The responses to ``frame`` and to the Produce requests already received
        after it: their acks=all records are fsynced once, together, before any of
        them is answered (group commit, decision 931)."""
        durable: set[TopicPartition] = set()
        responses = [await self.respond(node, frame, waiter, durable, peer=peer)]
        while (following := frames.ready(PRODUCE)) is not None:
            responses.append(await self.respond(node, following, waiter, durable))
        if durable:
            node.broker.sync(durable)       # type: ignore[attr-defined] # (can_sync)
        return b"".join(responses)

    async def _respond_while_connected(self, stream: SocketStream, node: Node,
                                       frame: bytes, waiter: AppendWaiter, peer: str
                                       ) -> bytes:
        """``respond``, given up if the client goes away meanwhile (its member then
        times out as if it had not rejoined)."""
        raw = stream.extra(SocketAttribute.raw_socket)
        # (asyncio hands out a wrapper without recv: peek through a duplicate)
        probe = socket.fromfd(raw.fileno(), raw.family, raw.type)
        answers: list[bytes] = []
        failures: list[Exception] = []
        with probe:
            await self._answer_or_hang_up(probe, node, frame, waiter, peer, answers,
                                          failures)
        if failures:
            raise failures[0]
        if not answers:
            raise anyio.EndOfStream
        return answers[0]

    async def _answer_or_hang_up(self, probe: socket.socket, node: Node, frame: bytes,
                                 waiter: AppendWaiter, peer: str, answers: list[bytes],
                                 failures: list[Exception]) -> None:
        async with anyio.create_task_group() as tasks:
            async def answer() -> None:
                try:
                    answers.append(await self.respond(node, frame, waiter, peer=peer))
                except Exception as exc:  # noqa: BLE001 - raised below, outside the group
                    failures.append(exc)
                tasks.cancel_scope.cancel()

            tasks.start_soon(answer)
            while True:            # (until the answer cancels this wait)
                await anyio.sleep(PEER_CHECK)
                if _peer_closed(probe):
                    tasks.cancel_scope.cancel()

    async def respond(self, node: Node, frame: bytes, waiter: AppendWaiter,
                      durable: set[TopicPartition] | None = None, *, peer: str = ""
                      ) -> bytes:
        """The framed response to one request frame (empty for a Produce with
        ``acks=0``, which Kafka does not answer); raises ``FrameError`` for a frame
        whose connection is to be closed. A Fetch may wait for appends (``waiter``),
        a JoinGroup or SyncGroup for the group's other members; ``peer`` is the
        client's address (DescribeGroups shows it). Given ``durable``, a Produce with
        acks=all adds the partitions the caller is to sync before it sends the
        response (``records.produce``)."""
        key, version, correlation_id = peek_header(frame)
        low, high = SERVED.get(key, (0, -1))
        if not low <= version <= high:
            if key == API_VERSIONS:
                # Kafka answers this one, so that a newer client can ask again
                return encode_response(correlation_id, unsupported_version())
            # Kafka closes the connection: there is no response the client could read
            raise FrameError(f"api key {key} version {version} is not served")
        request = decode_request(frame, key, version)
        if key == FETCH:
            body = await fetch(node, request, waiter)
        elif key == PRODUCE:
            body = produce(node, request, durable)
        elif key in GROUP_HANDLERS:
            body = await GROUP_HANDLERS[key](self.groups, node, request, f"/{peer}")
        elif key in TXN_HANDLERS:
            body = await TXN_HANDLERS[key](self.groups, node, request, f"/{peer}")
        elif key in RECORD_HANDLERS:
            body = RECORD_HANDLERS[key](node, request)
        else:
            body = handle(node, request)
        self.requests += 1
        self.traffic.note(key, request.body, body)
        return b"" if body is None else encode_response(correlation_id, body)


class _Frames:
    """The request frames of one connection. It receives as much as the socket has at
    a time, so that requests a client sent one after another are seen together
    (``ready``)."""

    def __init__(self, stream: SocketStream, max_frame_size: int) -> None:
        self._stream = stream
        self._max = max_frame_size
        self._buffer = bytearray()

    async def next(self) -> bytes:
        """The next frame (its size prefix removed), received as needed."""
        while True:
            frame = self._take()
            if frame is not None:
                return frame
            self._buffer += await self._stream.receive(_RECEIVE_SIZE)

    def ready(self, api_key: int) -> bytes | None:
        """The next frame if it is here whole and a request of ``api_key``."""
        if len(self._buffer) < 6 or _KEY.unpack_from(self._buffer, 4)[0] != api_key:
            return None
        return self._take()

    def _take(self) -> bytes | None:
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        (size,) = _SIZE.unpack_from(buffer)
        if size < 0 or size > self._max:
            raise FrameError(f"frame of {size} bytes (the limit is {self._max})")
        if len(buffer) < 4 + size:
            return None
        with memoryview(buffer) as view:        # (one copy, and released before the del)
            frame = bytes(view[4:4 + size])
        del buffer[:4 + size]
        return frame


def _peer_closed(sock: socket.socket) -> bool:
    """Whether the peer closed its side (a peek that reads the end of the stream);
    bytes waiting to be read, or none yet, mean it is still there."""
    try:
        return sock.recv(1, _PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
