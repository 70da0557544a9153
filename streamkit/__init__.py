"""streamkit: Faust-style stream processing on an embedded Kafka-like log, or on Kafka."""
from __future__ import annotations

__version__ = "0.1.0"

from streamkit.types import Message, RecordMetadata, TopicPartition  # noqa: E402
from streamkit.clients import Admin, Consumer, Producer  # noqa: E402
from streamkit.models import Record  # noqa: E402
from streamkit.serializers import Codec, Serde, codecs  # noqa: E402
from streamkit.streams.event import Event, current_event  # noqa: E402
from streamkit.streams.stream import Stream  # noqa: E402
from streamkit.topics import Topic  # noqa: E402
from streamkit.agents.agent import Agent  # noqa: E402
from streamkit.tables.table import GlobalTable, Table  # noqa: E402
from streamkit.app import App  # noqa: E402
from streamkit.worker import Worker  # noqa: E402

__all__ = ["Admin", "Agent", "App", "Codec", "Consumer", "Event", "GlobalTable",
           "Message", "Producer", "Record", "RecordMetadata", "Serde", "Stream", "Table",
           "Topic", "TopicPartition", "Worker", "codecs", "current_event", "__version__"]
