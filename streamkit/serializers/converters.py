"""Converting a decoded value to a type: the per-type converters Records and Serdes use.

A converter takes a value that is *not* already of the wanted type (the generated
record code checks that inline first) and returns it converted, or raises
:class:`Invalid`. The caller turns :class:`Invalid` into a ValidationError that names
where the value was (``TaxiRide.vendorId``, ``value``) and the value.

Records (``streamkit.models``, a layer up) are recognised by their
``_streamkit_fields_`` method and built with their ``from_data``: this module does not
import them.
"""
from __future__ import annotations

import base64
import binascii
import enum
import types
import typing
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from uuid import UUID

import msgpack
import msgspec

from streamkit.errors import ValidationError

__all__ = ["FAST_TYPES", "Invalid", "describe", "make_converter", "msgspec_reads_exactly",
           "parse_datetime", "type_name"]


#: Types whose values are checked inline with ``type(v) is T`` by generated code.
FAST_TYPES = (int, float, str, bool, bytes, datetime, date, time, Decimal, UUID)


class Invalid(Exception):
    """A value a converter cannot accept. ``path`` grows as it leaves containers."""

    def __init__(self, expected: str, value: Any, path: str = "",
                 detail: str = "", nested: str = "") -> None:
        super().__init__(expected)
        self.expected = expected
        self.value = value
        self.path = path
        self.detail = detail
        self.nested = nested  # the message of a nested Record's ValidationError

    def message(self, where: str) -> str:
        """``TaxiRide.vendorId: expected int, got 'abc' (str)``."""
        if self.nested:
            return f"{where}{self.path}: {self.nested}"
        text = f"{where}{self.path}: expected {self.expected}, got {describe(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text


def describe(value: Any) -> str:
    """``'abc' (str)``: the value, shortened, and its type, for error messages."""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def type_name(tp: Any) -> str:
    """How a field type is written in error messages: ``int``, ``list[int]``, ..."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = repr(tp)
    return text.replace("typing.", "").replace("datetime.", "").replace(
        "decimal.", "").replace("NoneType", "None")


# --------------------------------------------------------------------------- converters

def _to_int(v: Any, coerce: bool) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    if coerce:
        if type(v) is str:
            try:
                return int(v)  # Python's int(): "42", " 42 ", "+4_2"; not "4.2"
            except ValueError:
                pass
        elif type(v) is float and v.is_integer():
            return int(v)
        elif isinstance(v, Decimal) and v == v.to_integral_value():
            return int(v)
    raise Invalid("int", v)


def _to_float(v: Any, coerce: bool) -> float:
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if coerce:
            if type(v) is str:
                return float(v)
            if isinstance(v, Decimal):
                return float(v)
    except (ValueError, OverflowError):
        pass
    raise Invalid("float", v)


def _to_str(v: Any, coerce: bool) -> str:
    if isinstance(v, str):
        return str(v)
    if coerce and isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
        return str(v)
    raise Invalid("str", v)


_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


def _to_bool(v: Any, coerce: bool) -> bool:
    if isinstance(v, bool):
        return bool(v)
    if coerce:
        if type(v) is int and v in (0, 1):
            return bool(v)
        if type(v) is str:
            text = v.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
    raise Invalid("bool", v)


def _to_bytes(v: Any, coerce: bool) -> bytes:
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    if type(v) is str:  # the JSON wire form
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("bytes", v, detail="not base64") from None
    raise Invalid("bytes", v)


_convert = msgspec.convert
_MsgspecInvalid = msgspec.ValidationError
_fromisoformat = datetime.fromisoformat
_read_timestamp = msgspec.msgpack.Decoder(datetime).decode


def parse_datetime(text: str) -> datetime:
    """A datetime from its ISO-8601 text, read as msgspec reads it where msgspec does.

    msgspec, which decodes payloads straight into Records, reads RFC 3339 text
    (``2020-07-01T00:25:32.5+01:00``, a space for the ``T`` too) and rounds digits
    past the microsecond, where ``datetime.fromisoformat`` cuts them; it also takes a
    lowercase ``z``. So that a value does not depend on which decoder read it, such
    text is read by msgspec here too; the rest by ``fromisoformat``, which also reads
    the other ISO-8601 forms (``20200701T002532``, offsets with seconds) msgspec
    refuses (decision 203). Raises ValueError when neither reads it.
    """
    try:
        value = _fromisoformat(text)
    except ValueError:
        try:
            return _convert(text, datetime)
        except _MsgspecInvalid:
            raise ValueError(f"not an ISO-8601 date-time: {text!r:.80}") from None
    # The two differ only on digits past the microsecond ("...:32.1234567"): RFC 3339
    # text has its fraction at index 19.
    if len(text) > 26 and text[19] == "." and text[26].isdigit():
        try:
            return _convert(text, datetime)
        except _MsgspecInvalid:
            pass
    return value


def _to_datetime(v: Any, coerce: bool) -> datetime:
    if isinstance(v, datetime):
        return v
    if type(v) is str:
        try:
            return parse_datetime(v)
        except ValueError:
            raise Invalid("datetime", v, detail="not an ISO-8601 date-time") from None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return datetime.fromtimestamp(v, UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid("datetime", v, detail="epoch seconds out of range") from None
    if isinstance(v, msgpack.Timestamp):  # msgpack's timestamp extension (type -1)
        # Read by msgspec, as the fast path reads it (nanoseconds rounded).
        try:
            return _read_timestamp(msgpack.packb(v))
        except _MsgspecInvalid:
            raise Invalid("datetime", v, detail="timestamp out of range") from None
    raise Invalid("datetime", v)


def _to_date(v: Any, coerce: bool) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if type(v) is str:
        try:
            return date.fromisoformat(v)
        except ValueError:
            raise Invalid("date", v, detail="not an ISO-8601 date") from None
    raise Invalid("date", v)


def _to_time(v: Any, coerce: bool) -> time:
    if isinstance(v, time):
        return v
    if type(v) is str:
        try:
            return time.fromisoformat(v)
        except ValueError:
            raise Invalid("time", v, detail="not an ISO-8601 time") from None
    raise Invalid("time", v)


def _to_decimal(v: Any, coerce: bool) -> Decimal:
    if isinstance(v, Decimal):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return Decimal(v)
    if type(v) is float:
        return Decimal(repr(v))  # 9.3 -> Decimal('9.3'), not the binary expansion
    if type(v) is str:  # the wire form
        try:
            return Decimal(v.strip())
        except InvalidOperation:
            pass
    raise Invalid("Decimal", v)


def _to_uuid(v: Any, coerce: bool) -> UUID:
    if isinstance(v, UUID):
        return v
    if type(v) is str:
        try:
            return UUID(v)
        except ValueError:
            pass
    raise Invalid("UUID", v)


_SCALARS: dict[type, Callable[[Any, bool], Any]] = {
    int: _to_int, float: _to_float, str: _to_str, bool: _to_bool, bytes: _to_bytes,
    datetime: _to_datetime, date: _to_date, time: _to_time, Decimal: _to_decimal,
    UUID: _to_uuid,
}


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "_streamkit_fields_") and hasattr(
        tp, "_fields")


def make_converter(tp: Any, coerce: bool) -> Callable[[Any], Any]:
    """A function that converts a value to ``tp`` or raises :class:`Invalid`."""
    if tp is Any or tp is object:
        return lambda v: v
    while hasattr(tp, "__supertype__"):  # NewType("UserId", int) -> int
        tp = tp.__supertype__
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return lambda v: scalar(v, coerce)
    if _is_record(tp):
        return _record_converter(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_converter(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union_converter(tp, args, coerce)
    if origin in (list, set, frozenset) or tp in (list, set, frozenset):
        return _sequence_converter(tp, origin or tp, args, coerce)
    if origin in (Sequence, MutableSequence):
        return _sequence_converter(tp, list, args, coerce)
    if origin is tuple or tp is tuple:
        return _tuple_converter(tp, args, coerce)
    if origin is dict or tp is dict or origin is Mapping:
        return _dict_converter(tp, args, coerce)
    if origin is typing.Literal:
        allowed = set(args)
        name = type_name(tp)

        def literal(v: Any) -> Any:
            try:
                if v in allowed and type(v) in {type(a) for a in args}:
                    return v
            except TypeError:  # unhashable
                pass
            raise Invalid(name, v)
        return literal
    if isinstance(tp, type):
        name = tp.__name__

        def instance(v: Any) -> Any:
            if isinstance(v, tp):
                return v
            raise Invalid(name, v)
        return instance
    return lambda v: v  # typing constructs streamkit does not check (TypeVar, ...)


class _RecordClass(Protocol):
    """What a converter uses of a Record class (``streamkit.models.Record``)."""

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Any: ...

    def _streamkit_fields_(self) -> dict[str, Any]: ...


def _record_converter(tp: type[_RecordClass]) -> Callable[[Any], Any]:
    def record(v: Any) -> Any:
        if isinstance(v, tp):
            return v
        if isinstance(v, Mapping):
            try:
                return tp.from_data(v)
            except ValidationError as exc:
                raise Invalid(tp.__name__, v, nested=str(exc)) from None
        raise Invalid(tp.__name__, v)
    return record


def _enum_converter(tp: type[enum.Enum]) -> Callable[[Any], Any]:
    def to_enum(v: Any) -> Any:
        if isinstance(v, tp):
            return v
        try:
            return tp(v)
        except ValueError:
            pass
        if type(v) is str and v in tp.__members__:
            return tp.__members__[v]
        raise Invalid(tp.__name__, v)
    return to_enum


def _union_converter(tp: Any, args: tuple[Any, ...], coerce: bool) -> Callable[[Any], Any]:
    optional = type(None) in args
    members = [a for a in args if a is not type(None)]
    exact = tuple(a for a in members if a in FAST_TYPES or _is_record(a))
    converters = [make_converter(a, coerce) for a in members]
    name = type_name(tp)
    if len(converters) == 1:
        only = converters[0]

        def optional_one(v: Any) -> Any:
            if v is None:
                return None
            return only(v)
        return optional_one

    def union(v: Any) -> Any:
        if v is None and optional:
            return None
        if type(v) in exact:  # already one of the members: keep it as it is
            return v
        for convert in converters:
            try:
                return convert(v)
            except Invalid:
                continue
        raise Invalid(name, v)
    return union


def _sequence_converter(tp: Any, kind: type, args: tuple[Any, ...],
                        coerce: bool) -> Callable[[Any], Any]:
    item = make_converter(args[0], coerce) if args else None
    item_type = args[0] if args and args[0] in FAST_TYPES else None
    name = type_name(tp)

    def sequence(v: Any) -> Any:
        if not isinstance(v, (list, tuple, set, frozenset)):
            raise Invalid(name, v)
        if item is None:
            return v if type(v) is kind else kind(v)
        out = []
        for i, x in enumerate(v):
            if type(x) is item_type:
                out.append(x)
                continue
            try:
                out.append(item(x))
            except Invalid as exc:
                exc.path = f"[{i}]{exc.path}"
                raise
        return out if kind is list else kind(out)
    return sequence


def _tuple_converter(tp: Any, args: tuple[Any, ...], coerce: bool) -> Callable[[Any], Any]:
    name = type_name(tp)
    if not args or (len(args) == 2 and args[1] is Ellipsis):
        seq = _sequence_converter(tp, list, args[:1], coerce)
        return lambda v: tuple(seq(v))
    items = [make_converter(a, coerce) for a in args]

    def fixed(v: Any) -> tuple[Any, ...]:
        if not isinstance(v, (list, tuple)) or len(v) != len(items):
            raise Invalid(name, v)
        out = []
        for i, (convert, x) in enumerate(zip(items, v, strict=True)):
            try:
                out.append(convert(x))
            except Invalid as exc:
                exc.path = f"[{i}]{exc.path}"
                raise
        return tuple(out)
    return fixed


def _dict_converter(tp: Any, args: tuple[Any, ...], coerce: bool) -> Callable[[Any], Any]:
    name = type_name(tp)
    # JSON object keys are always strings, so keys are coerced ("1" -> 1) regardless.
    key = make_converter(args[0], True) if args else None
    value = make_converter(args[1], coerce) if len(args) > 1 else None
    key_type = args[0] if args and args[0] in FAST_TYPES else None
    value_type = args[1] if len(args) > 1 and args[1] in FAST_TYPES else None

    def mapping(v: Any) -> dict[Any, Any]:
        if not isinstance(v, Mapping):
            raise Invalid(name, v)
        if key is None and value is None:
            return v if type(v) is dict else dict(v)
        out = {}
        for k, x in v.items():
            try:
                if key is not None and type(k) is not key_type:
                    k = key(k)
            except Invalid as exc:
                exc.path = f"[{k!r}] (key){exc.path}"
                raise
            try:
                if value is not None and type(x) is not value_type:
                    x = value(x)
            except Invalid as exc:
                exc.path = f"[{k!r}]{exc.path}"
                raise
            out[k] = x
        return out
    return mapping


# ------------------------------------------------------------------ msgspec's share

#: field types msgspec decodes exactly as the converters above would (decision 203)
_EXACT_SCALARS = (int, float, str, bool, datetime, type(None))


def msgspec_reads_exactly(tp: Any, fmt: str, _seen: set[int] | None = None) -> bool:
    """Whether msgspec, decoding ``fmt`` ("json" or "msgpack") into a field of type
    ``tp`` in strict mode, accepts only values the converter for ``tp`` would keep or
    convert to the very same value (decision 203). Where it does, a Record can be
    decoded by msgspec alone; anything msgspec then refuses (a string for an int, a
    missing field) is decoded again the careful way, which converts or names the error.

    Yes for int, float, str, bool, datetime (``parse_datetime`` reads ISO text as
    msgspec does), ``X | None``, lists, sets, frozensets and tuples of those, dicts
    with str or int keys, Records whose fields all qualify, and ``Any`` in JSON. No for
    Decimal (msgspec reads the JSON number ``9.30`` as ``Decimal("9.30")``, the
    converter as ``Decimal("9.3")``), unions (``str | float`` given 5: msgspec gives
    5.0, the converter, trying members in order, ``"5"``), ``Any`` in msgpack (msgspec
    reads extension types as its own objects), and the types not checked against the
    converters: UUID, date, time, bytes, enums, literals.
    """
    if tp in _EXACT_SCALARS:
        return True
    if tp is Any or tp is object:
        return fmt == "json"
    if _is_record(tp):
        seen = _seen if _seen is not None else set()
        if id(tp) in seen:  # a Record that contains itself
            return True
        seen.add(id(tp))
        return all(msgspec_reads_exactly(fd.type, fmt, seen)
                   for fd in tp._fields.values())
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        return len(args) == 2 and len(members) == 1 and msgspec_reads_exactly(
            members[0], fmt, _seen)
    if origin in (list, set, frozenset):
        return len(args) == 1 and msgspec_reads_exactly(args[0], fmt, _seen)
    if origin is tuple:
        items = args[:1] if len(args) == 2 and args[1] is Ellipsis else args
        return bool(items) and all(msgspec_reads_exactly(a, fmt, _seen) for a in items)
    if origin is dict:
        return len(args) == 2 and args[0] in (str, int) and msgspec_reads_exactly(
            args[1], fmt, _seen)
    return False
