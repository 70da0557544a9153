"""The Kafka wire protocol over the embedded log: ``streamkit broker``.

``WireServer`` serves a ``Broker`` (the embedded log) to Kafka clients over TCP. The
message types come from kio (the ``broker`` extra), generated from Kafka's own message
definitions (decision 901). See docs/broker.md for what is served.
"""
from __future__ import annotations

from streamkit.wire.apis import SERVED
from streamkit.wire.server import WireServer, cluster_id_for

__all__ = ["SERVED", "WireServer", "cluster_id_for"]
