"""streamkit: Faust-style stream processing on an embedded Kafka-like log, or on Kafka."""
from __future__ import annotations

__version__ = "0.1.0"

from streamkit.types import Message, RecordMetadata, TopicPartition
from streamkit.clients import Admin, Consumer, Producer
from streamkit.models import Record
from streamkit.serializers import Codec, Serde, codecs
from streamkit.streams.event import Event, current_event
from streamkit.streams.stream import Stream
from streamkit.streams.channel import Channel
from streamkit.topics import Topic
from streamkit.agents.agent import Agent
from streamkit.tables.global_table import GlobalTable
from streamkit.tables.sets import SetGlobalTable, SetTable
from streamkit.tables.table import Table
from streamkit.app import App
from streamkit.worker import Worker
from streamkit import web


def __getattr__(name: str) -> object:
    # ``streamkit.option``/``streamkit.argument`` and ``streamkit.cli.option`` (Faust's
    # ``faust.cli.option``) come from the command line, which ``import streamkit``
    # does not load
    if name in ("option", "argument", "cli"):
        import importlib
        cli = importlib.import_module("streamkit.cli")
        return cli if name == "cli" else getattr(cli, name)
    raise AttributeError(f"module 'streamkit' has no attribute {name!r}")


__all__ = ["Admin", "Agent", "App", "Channel", "Codec", "Consumer", "Event", "GlobalTable",
           "Message", "Producer", "Record", "RecordMetadata", "Serde", "SetGlobalTable",
           "SetTable", "Stream", "Table", "Topic", "TopicPartition", "Worker", "codecs",
           "current_event", "web", "__version__"]
