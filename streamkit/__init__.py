"""streamkit: Faust-style stream processing on an embedded Kafka-like log, or on Kafka."""
from __future__ import annotations

__version__ = "0.1.0"

from streamkit.types import Message, RecordMetadata, TopicPartition  # noqa: E402
from streamkit.clients import Admin, Consumer, Producer  # noqa: E402

__all__ = ["Message", "RecordMetadata", "TopicPartition", "__version__",
           "Admin", "Consumer", "Producer"]
