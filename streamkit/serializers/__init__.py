"""Codecs (json, msgpack, raw, your own) and the Serde a topic uses for keys and values."""
from __future__ import annotations

from streamkit.serializers import codecs
from streamkit.serializers.codecs import Codec
from streamkit.serializers.serde import Serde

__all__ = ["Codec", "Serde", "codecs"]
