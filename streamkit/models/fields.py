"""Record fields: the field descriptor, and ``MISSING``, the default of a required
field. Converting values to a field's type is ``streamkit.serializers.converters``.
"""
from __future__ import annotations

import copy
import enum
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal
from operator import attrgetter
from typing import Any
from uuid import UUID

from streamkit.serializers.converters import type_name

__all__ = ["FieldDescriptor", "MISSING", "copies_default"]


class _Missing:
    """The default of a required field (no value given)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: Default values that are safe to share between instances.
_IMMUTABLE = (int, float, str, bool, bytes, type(None), tuple, frozenset, datetime,
              date, time, Decimal, UUID, enum.Enum)


def copies_default(default: Any) -> bool:
    """Whether each instance gets its own copy of ``default`` (lists, dicts, sets,
    Records: anything not known to be immutable)."""
    return default is not MISSING and not isinstance(default, _IMMUTABLE)


class FieldDescriptor:
    """One field of a Record class: ``TaxiRide.vendorId``.

    ``field`` is the name, ``type`` the resolved annotation, ``default`` the default
    value (``MISSING`` when required), ``required`` whether a value must be given,
    ``model`` the Record class and ``index`` the position in declaration order.
    ``getattr(record)`` returns the field's value of a record (used by ``group_by``).
    """

    __slots__ = ("field", "type", "default", "required", "model", "index", "getattr",
                 "_copy_default")

    def __init__(self, field: str, type: Any, default: Any, model: type,
                 index: int) -> None:
        self.field = field
        self.type = type
        self.default = default
        self.required = default is MISSING
        self.model = model
        self.index = index
        self.getattr: Callable[[Any], Any] = attrgetter(field)
        # Mutable defaults (lists, dicts, Records) are copied for every instance.
        self._copy_default = copies_default(default)

    @property
    def ident(self) -> str:
        """``"TaxiRide.vendorId"``."""
        return f"{self.model.__name__}.{self.field}"

    def default_value(self) -> Any:
        """The default for a new instance (a fresh copy when it is mutable)."""
        return copy.deepcopy(self.default) if self._copy_default else self.default

    def __repr__(self) -> str:
        return f"<FieldDescriptor: {self.ident}: {type_name(self.type)}>"

    def __reduce__(self) -> tuple[Callable[[object, str], Any], tuple[type, str]]:
        return (getattr, (self.model, self.field))
