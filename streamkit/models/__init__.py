"""Typed records: ``class TaxiRide(Record): vendorId: int``."""
from __future__ import annotations

from streamkit.models.fields import MISSING, FieldDescriptor
from streamkit.models.record import Record, RecordOptions

__all__ = ["Record", "RecordOptions", "FieldDescriptor", "MISSING"]
