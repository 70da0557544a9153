"""What an app's streams are given: how to reach topics, tasks and the broker.

A ``Stream`` never reaches back to the App. The App builds one ``StreamContext`` when
it is created and hands it to every stream; ``agent.test_context()`` hands its own (a
memory broker, group_by in place). The fields are plain callables and objects, so a
reader sees at once everything a stream can do beyond iterating its batches.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from streamkit.monitor import Monitor
from streamkit.topics import Sender, Topic

if TYPE_CHECKING:
    from streamkit.streams.stream import Stream, _Operators


class Repartition(Protocol):
    """How ``group_by`` and ``through`` continue a stream on another topic."""

    def group_by(self, parent: _Operators, key: Any, *, name: str | None,
                 partitions: int | None) -> Any:
        """The stream of ``parent``'s events re-keyed by ``key``."""
        ...

    def through(self, parent: _Operators, channel: Topic) -> Any:
        """The stream of ``parent``'s events after a pass through ``channel``."""
        ...


@dataclass
class StreamContext:
    """See the module docstring."""

    #: the app id: first part of the topic names a stream derives
    app_id: str
    #: writes every record the streams send or forward
    sender: Sender
    monitor: Monitor
    #: the app's topic of a name (``echo("name")``, ``through("name")``)
    topic: Callable[[str], Topic]
    #: a new stream of a topic, fed by the worker's fetcher: (topic, index, agent)
    add_stream: Callable[[Topic, int, Any], Stream]
    #: run ``fun(*args)`` as a task beside the agents: (name, fun, *args)
    spawn: Callable[..., None]
    #: how ``group_by``/``through`` continue (set by the app once it is built)
    repartition: Repartition
    #: the stream-table joins of partitioned tables the agents asked for, by (topic
    #: name, table name): (topic, table); the worker checks they are co-partitioned
    joins: dict[tuple[str, str], tuple[Topic, Any]] = field(default_factory=dict)
