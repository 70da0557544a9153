"""Record: a typed message value, declared with class annotations.

Each Record class gets code generated for its own fields (``__init__``, the decoder
``_from_wire``, ``__eq__``, ``__hash__``, ``__repr__``, ``asdict``). The generated
code checks each value with an inline ``type(v) is T`` and calls the field's converter
only when that fails, so decoding a well-formed message costs no function call per
field. Values live in ``__slots__`` named like the fields, so ``ride.vendorId`` is a
plain slot read; the metaclass answers class-level reads (``TaxiRide.vendorId``) with
the field's FieldDescriptor instead of the slot member.
"""
from __future__ import annotations

import base64
import enum
import sys
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from streamkit.errors import DecodeError, ImproperlyConfigured, ValidationError
from streamkit.models.fields import MISSING, FieldDescriptor
from streamkit.serializers import codecs
from streamkit.serializers.converters import FAST_TYPES, Invalid, describe, make_converter

__all__ = ["Record", "RecordOptions"]

_PREFIX = "_sk_"  # generated code's own names; fields may not start with it


class RecordOptions:
    """The class options of a Record: ``class R(Record, serializer="json", ...)``.

    ``serializer``: codec name used by ``dumps``/``loads`` and by topics whose
    ``value_type`` is this Record (``None``: the topic's or ``"json"``).
    ``validation``: raise ValidationError for values of the wrong type (default True).
    ``coerce``: convert compatible values: ``"9.3"`` -> 9.3, ``"42"`` -> 42,
    42 -> ``"42"`` for str fields (default True).
    ``namespace``: a stable name for the schema (default ``module.QualName``).
    """

    __slots__ = ("serializer", "validation", "coerce", "namespace")

    def __init__(self, serializer: str | None, validation: bool, coerce: bool,
                 namespace: str) -> None:
        self.serializer = serializer
        self.validation = validation
        self.coerce = coerce
        self.namespace = namespace

    def __repr__(self) -> str:
        return (f"RecordOptions(serializer={self.serializer!r}, validation="
                f"{self.validation!r}, coerce={self.coerce!r}, namespace="
                f"{self.namespace!r})")


#: Faust Record options streamkit accepts and ignores: ISO dates and Decimals are
#: always parsed, no "__faust" metadata is written, and every Record is concrete.
_FAUST_ONLY_OPTIONS = frozenset({"isodates", "decimals", "include_metadata", "abstract",
                                 "allow_blessed_key", "polymorphic_fields",
                                 "lazy_creation"})


class RecordMeta(type):
    """Builds the fields, slots and generated methods of every Record class."""

    # what __new__ sets on every class it builds (Record declares their types)
    _options: RecordOptions
    _fields: dict[str, FieldDescriptor]
    _from_wire: Callable[[Any], Record]
    _many: Callable[[list[bytes | None], Callable[[bytes], Any]], list[Record | None]]
    _many_decoded: Callable[[list[Any]], list[Record | None]]
    __match_args__: tuple[str, ...]

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                serializer: str | None = None, validation: bool | None = None,
                coerce: bool | None = None, namespace: str | None = None,
                **kwargs: Any) -> RecordMeta:
        for option in _FAUST_ONLY_OPTIONS.intersection(kwargs):
            kwargs.pop(option)  # accepted so Faust models import unchanged
        annotations = ns.get("__annotations__", {})
        own = [f for f, a in annotations.items() if not _is_classvar(a)]
        inherited = {f for base in bases for f in getattr(base, "_fields", ())}
        _check_names(name, own, ns)
        # Values live in slots named like the fields; the defaults move into the
        # field descriptors (a class attribute would clash with the slot).
        defaults = {f: ns.pop(f) for f in own if f in ns}
        ns["__slots__"] = tuple(ns.get("__slots__", ())) + tuple(
            f for f in own if f not in inherited)
        try:
            cls = super().__new__(mcs, name, bases, ns, **kwargs)
        except TypeError as exc:
            if "lay-out conflict" not in str(exc):
                raise
            raise ImproperlyConfigured(
                f"{name}: fields can come from one Record base only; "
                f"{', '.join(b.__name__ for b in bases)} each hold fields (mixins "
                "without fields are fine)") from None
        parent = getattr(cls, "_options", None)
        cls._options = RecordOptions(
            serializer if serializer is not None else (parent and parent.serializer),
            validation if validation is not None else (
                parent.validation if parent else True),
            coerce if coerce is not None else (parent.coerce if parent else True),
            namespace or f"{cls.__module__}.{cls.__qualname__}",
        )
        # Names local to the function that defines the class (a Record declared in a
        # test or a factory) resolve string annotations too.
        frame = sys._getframe(1)  # noqa: SLF001 - CPython's way to see the caller's locals
        fields = _collect_fields(cls, {f: annotations[f] for f in own}, defaults,
                                 frame.f_locals if frame.f_code.co_name != "<module>"
                                 else {})
        cls._fields = fields
        # (mypy takes __match_args__ for read-only; a metaclass is what sets it)
        cls.__match_args__ = tuple(fields)  # type: ignore[misc]
        _install_generated(cls, fields)
        return cls

    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(name, bases, ns)

    def __getattribute__(cls, name: str,
                         _get: Callable[[type, str], Any] = type.__getattribute__) -> Any:
        # Class-level reads only (instances never come here): TaxiRide.vendorId is
        # the field descriptor, not the slot member that holds instance values.
        try:
            fd = _get(cls, "_fields").get(name)
        except AttributeError:  # Record itself, while being created
            fd = None
        return fd if fd is not None else _get(cls, name)

    def __dir__(cls) -> list[str]:
        return sorted(set(super().__dir__()) | set(cls._fields))


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar"))
    return annotation is ClassVar or typing.get_origin(annotation) is ClassVar


def _check_names(record: str, fields: list[str], ns: dict[str, Any]) -> None:
    reserved = _reserved_names()
    for field in fields:
        if field.startswith(("__", _PREFIX)) or field in reserved:
            raise ImproperlyConfigured(
                f"{record}.{field}: field name clashes with a Record attribute; "
                "rename the field")
        value = ns.get(field)
        if callable(value) or isinstance(value, (property, classmethod, staticmethod)):
            raise ImproperlyConfigured(
                f"{record}.{field}: a field and a method or property share this name")


def _collect_fields(cls: type, annotations: dict[str, Any], defaults: dict[str, Any],
                    caller_locals: dict[str, Any]) -> dict[str, FieldDescriptor]:
    """Parent fields first, then this class's annotations, in declaration order."""
    merged: dict[str, tuple[Any, Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        for fd in base.__dict__.get("_fields", {}).values():
            merged[fd.field] = (fd.type, fd.default)
    module = sys.modules.get(cls.__module__)
    globalns = dict(vars(module)) if module else {}
    localns = {**caller_locals, cls.__name__: cls}
    for field, annotation in annotations.items():
        tp = _resolve(cls, field, annotation, globalns, localns)
        default = defaults.get(field, merged.get(field, (None, MISSING))[1])
        merged[field] = (tp, default)
    return {f: FieldDescriptor(f, tp, default, cls, i)
            for i, (f, (tp, default)) in enumerate(merged.items())}


def _resolve(cls: type, field: str, annotation: Any, globalns: dict[str, Any],
             localns: dict[str, Any]) -> Any:
    # A quoted annotation under `from __future__ import annotations` is a string of
    # a string: evaluate until it is not a string any more.
    for _ in range(3):
        if not isinstance(annotation, str):
            return annotation
        try:
            annotation = eval(annotation, globalns, localns)  # noqa: S307 - class code
        except Exception as exc:  # noqa: BLE001 - any error of a user's annotation
            raise ImproperlyConfigured(
                f"{cls.__name__}.{field}: cannot resolve annotation {annotation!r}: "
                f"{exc}") from None
    return annotation


_RESERVED: set[str] = set()


def _reserved_names() -> set[str]:
    if not _RESERVED and "Record" in globals():
        _RESERVED.update(n for n in dir(Record) if not n.startswith("__"))
    return _RESERVED


# ------------------------------------------------------------------ code generation

def _fast_type(tp: Any) -> tuple[Any, bool]:
    """(T, optional) when values can be checked inline with ``type(v) is T``."""
    optional = False
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is __import__("types").UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            return None, False
        tp, optional = args[0], True
    if tp in FAST_TYPES or (isinstance(tp, type) and (
            isinstance(tp, RecordMeta) or issubclass(tp, enum.Enum))):
        return tp, optional
    return None, False


def _field_converter(cls: RecordMeta, fd: FieldDescriptor) -> Callable[[Any], Any]:
    """Converter that raises ValidationError naming record, field and value."""
    convert = make_converter(fd.type, cls._options.coerce)
    validation = cls._options.validation
    where = f"{cls.__name__}.{fd.field}"
    record, field = cls.__name__, fd.field

    def convert_field(value: Any) -> Any:
        if value is MISSING:
            err = ValidationError(f"{where}: missing required field")
        else:
            try:
                return convert(value)
            except Invalid as exc:
                if not validation:
                    return value
                err = ValidationError(exc.message(where))
        err.record, err.field, err.value = record, field, value
        raise err from None  # not "during handling of ValueError" noise

    return convert_field


def _check_lines(var: str, i: int, tp: Any, optional: bool, indent: str,
                 coerce: bool) -> list[str]:
    """Code that converts ``var`` in place when it is not already of type T."""
    guard = f"{var} is not None and " if optional else ""
    if tp is None:
        return [f"{indent}{var} = _sk_c{i}({var})"] if not optional else [
            f"{indent}if {var} is not None: {var} = _sk_c{i}({var})"]
    if tp is datetime:
        # The wire form of a datetime is an ISO string: parse it without a call chain.
        return [
            f"{indent}if _sk_type({var}) is _sk_str:",
            f"{indent}    try: {var} = _sk_fromiso({var})",
            f"{indent}    except _sk_ValueError: {var} = _sk_c{i}({var})",
            f"{indent}elif {guard}_sk_type({var}) is not _sk_T{i}: {var} = _sk_c{i}({var})",
        ]
    if tp is float:
        # JSON writers often drop ".0", and CSV-fed producers send numbers as strings:
        # convert both without the converter call chain.
        lines = [
            f"{indent}if {guard}_sk_type({var}) is not _sk_float:",
            f"{indent}    if _sk_type({var}) is _sk_int:",
            f"{indent}        try: {var} = _sk_float({var})",
            f"{indent}        except _sk_OverflowError: {var} = _sk_c{i}({var})",
        ]
        if coerce:
            lines += [
                f"{indent}    elif _sk_type({var}) is _sk_str:",
                f"{indent}        try: {var} = _sk_float({var})",
                f"{indent}        except _sk_ValueError: {var} = _sk_c{i}({var})",
            ]
        return lines + [f"{indent}    else: {var} = _sk_c{i}({var})"]
    if tp is int and coerce:
        return [
            f"{indent}if {guard}_sk_type({var}) is not _sk_int:",
            f"{indent}    if _sk_type({var}) is _sk_str:",
            f"{indent}        try: {var} = _sk_int({var})",
            f"{indent}        except _sk_ValueError: {var} = _sk_c{i}({var})",
            f"{indent}    else: {var} = _sk_c{i}({var})",
        ]
    return [f"{indent}if {guard}_sk_type({var}) is not _sk_T{i}: {var} = _sk_c{i}({var})"]


def _wire_lines(fields: dict[str, FieldDescriptor], fast: list[tuple[Any, bool, bool]],
                indent: str, obj: str, coerce: bool) -> list[str]:
    """Read every field from dict ``d`` into ``obj`` (KeyError when one is absent)."""
    lines = []
    for i, name in enumerate(fields):
        tp, optional, check = fast[i]
        lines.append(f"{indent}v = d[{name!r}]")
        if check:
            lines += _check_lines("v", i, tp, optional, indent, coerce)
        lines.append(f"{indent}{obj}.{name} = v")
    return lines


def _install_generated(cls: RecordMeta, fields: dict[str, FieldDescriptor]) -> None:
    names = list(fields)
    coerce = cls._options.coerce
    env: dict[str, Any] = {
        "_sk_cls": cls, "_sk_MISSING": MISSING, "_sk_new": object.__new__,
        "_sk_fromiso": datetime.fromisoformat, "_sk_plain": _plain,
        "_sk_jsonable": _jsonable, "_sk_Mapping": Mapping,
        "_sk_ValidationError": ValidationError, "_sk_describe": describe,
        # Builtins under private names: a field may be called `type` or `str`, and
        # field names are __init__'s parameters.
        "_sk_type": type, "_sk_str": str, "_sk_int": int, "_sk_float": float,
        "_sk_ValueError": ValueError, "_sk_OverflowError": OverflowError,
    }
    params, init_body, fast = [], [], []
    for i, (name, fd) in enumerate(fields.items()):
        tp, optional = _fast_type(fd.type)
        check = fd.type is not Any and fd.type is not object
        fast.append((tp, optional, check))
        env[f"_sk_T{i}"] = tp
        env[f"_sk_c{i}"] = _field_converter(cls, fd)
        env[f"_sk_f{i}"] = fd
        copy_default = fd._copy_default  # noqa: SLF001 - the descriptor made in this unit
        if fd.required or copy_default:
            params.append(f"{name}=_sk_MISSING")
            if copy_default:
                init_body.append(f"    if {name} is _sk_MISSING: "
                                 f"{name} = _sk_f{i}.default_value()")
            elif not check:
                init_body.append(f"    if {name} is _sk_MISSING: _sk_c{i}({name})")
        else:
            env[f"_sk_d{i}"] = fd.default
            params.append(f"{name}=_sk_d{i}")
        if check:
            init_body += _check_lines(name, i, tp, optional, "    ", coerce)
    for name in names:
        init_body.append(f"    _sk_self.{name} = {name}")
    post = ["    _sk_self.__post_init__()"] if hasattr(cls, "__post_init__") else []
    src = [f"def __init__(_sk_self, {', '.join(params)}):" if params
           else "def __init__(_sk_self):"]
    src += init_body + post + ["    pass"]
    post = ["    self.__post_init__()"] if post else []
    not_a_mapping = f"{cls.__name__}: expected a mapping of fields, got "
    src += [
        "def _sk_slow(d):",
        "    if not isinstance(d, _sk_Mapping):",
        f"        raise _sk_ValidationError({not_a_mapping!r} + _sk_describe(d))",
        f"    return _sk_cls(**{{k: d[k] for k in {tuple(names)!r} if k in d}})",
    ]
    # Hot loops read these as locals (bound as defaults): no global lookups.
    binds = ", ".join(["_sk_new=_sk_new", "_sk_cls=_sk_cls", "_sk_slow=_sk_slow",
                       "_sk_fromiso=_sk_fromiso", "_sk_type=_sk_type",
                       "_sk_str=_sk_str", "_sk_int=_sk_int", "_sk_float=_sk_float"]
                      + [f"_sk_{k}{i}=_sk_{k}{i}" for i in range(len(names))
                         for k in ("T", "c")])
    # Decoders: a dict from a codec -> instance. Unknown keys are ignored; a missing
    # key or a non-dict takes the slow path (defaults, error messages).
    src += [
        "def _from_wire(d):",
        "    if type(d) is not dict: return _sk_slow(d)",
        "    self = _sk_new(_sk_cls)",
        "    try:",
        *_wire_lines(fields, fast, "        ", "self", coerce),
        "        pass",
        "    except KeyError:",
        "        return _sk_slow(d)",
        *post,
        "    return self",
    ]
    # Batch decoders: the same per-field code inlined into the loop, so one message
    # costs the codec call and no further Python call. Any error -> caller retries
    # the batch one message at a time. ``_many`` decodes payloads with ``unpack``;
    # ``_many_decoded`` takes what a codec's ``fast_loads_many`` already decoded.
    for header, decode in ((f"def _many(datas, unpack, *, {binds}):", "unpack(data)"),
                           (f"def _many_decoded(datas, *, {binds}):", "data")):
        src += [
            header,
            "    out = []",
            "    append = out.append",
            "    for data in datas:",
            "        if data is None:",
            "            append(None)",
            "            continue",
            f"        d = {decode}",  # not a mapping: TypeError below, batch retried
            "        self = _sk_new(_sk_cls)",
            "        try:",
            *_wire_lines(fields, fast, "            ", "self", coerce),
            "            pass",
            "        except KeyError:",
            "            append(_sk_slow(d))",  # __init__ ran __post_init__ already
            "            continue",
            *("    " + line for line in post),
            "        append(self)",
            "    return out",
        ]

    def values(obj: str) -> str:
        return ", ".join(f"{obj}.{n}" for n in names)

    def tuple_of(obj: str) -> str:
        return f"({values(obj)},)" if names else "()"

    src += [
        "def __eq__(self, other):",
        "    if other.__class__ is not self.__class__: return NotImplemented",
        f"    return {tuple_of('self')} == {tuple_of('other')}",
        "def __hash__(self):",
        f"    return hash(({cls.__name__!r}, {tuple_of('self')}))",
        "def __repr__(self):",
        '    return f"<' + cls.__name__ + (": " if names else "")
        + ", ".join(f"{n}={{self.{n}!r}}" for n in names) + '>"',
        "def asdict(self):",
        "    return {" + ", ".join(
            f"{n!r}: " + (f"self.{n}" if _is_plain(fields[n].type)
                          else f"_sk_plain(self.{n})") for n in names) + "}",
        "def to_representation(self):",
        "    return {" + ", ".join(
            f"{n!r}: " + (f"self.{n}" if _is_jsonable(fields[n].type)
                          else f"_sk_jsonable(self.{n})") for n in names) + "}",
        "def _streamkit_fields_(self):",
        "    return {" + ", ".join(f"{n!r}: self.{n}" for n in names) + "}",
    ]
    code = compile("\n".join(src), f"<streamkit record {cls.__qualname__}>", "exec")
    exec(code, env)  # noqa: S102 - source built above from field names only
    for fn_name in ("__init__", "__eq__", "__hash__", "__repr__", "asdict",
                    "to_representation", "_streamkit_fields_"):
        fn = env[fn_name]
        fn.__qualname__ = f"{cls.__qualname__}.{fn_name}"
        setattr(cls, fn_name, fn)
    env["__init__"].__doc__ = f"Build a {cls.__name__} from field values (validated)."
    cls._from_wire = staticmethod(env["_from_wire"])
    cls._many = staticmethod(env["_many"])
    cls._many_decoded = staticmethod(env["_many_decoded"])


_PLAIN_TYPES = (int, float, str, bool, bytes, datetime, date, time, Decimal, UUID)


def _is_plain(tp: Any) -> bool:
    """True when asdict() can return the value as it is (no Record inside)."""
    if tp in _PLAIN_TYPES:
        return True
    args = typing.get_args(tp)
    return bool(args) and typing.get_origin(tp) in (typing.Union, __import__(
        "types").UnionType) and all(a is type(None) or a in _PLAIN_TYPES for a in args)


def _is_jsonable(tp: Any) -> bool:
    json_types = (int, float, str, bool)
    if tp in json_types:
        return True
    args = typing.get_args(tp)
    return bool(args) and typing.get_origin(tp) in (typing.Union, __import__(
        "types").UnionType) and all(a is type(None) or a in json_types for a in args)


def _plain(value: Any) -> Any:
    """asdict() of a value: Records become dicts, containers are walked."""
    if isinstance(value, Record):
        return value.asdict()
    if type(value) is list:
        return [_plain(v) for v in value]
    if type(value) is dict:
        return {k: _plain(v) for k, v in value.items()}
    if type(value) is tuple:
        return tuple(_plain(v) for v in value)
    return value


def _jsonable(value: Any) -> Any:
    """to_representation() of a value: only JSON types remain."""
    if value is None or type(value) in (int, float, str, bool):
        return value
    if isinstance(value, Record):
        return value.to_representation()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k if isinstance(k, (str, int, float, bool)) else str(_jsonable(k)):
                _jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    return codecs.wire_form(value)


class Record(metaclass=RecordMeta):
    """Base class of typed records. Declare fields as annotations::

        class TaxiRide(Record, serializer="json"):
            vendorId: int
            total_amount: float = 0.0
            pickup: datetime | None = None

    Class options: ``serializer=``, ``validation=``, ``coerce=``, ``namespace=``
    (see :class:`RecordOptions`). ``Record._fields`` maps field names, in
    declaration order, to their :class:`FieldDescriptor`.
    """

    __slots__ = ()
    _fields: ClassVar[dict[str, FieldDescriptor]]
    _options: ClassVar[RecordOptions]
    _from_wire: ClassVar[Callable[[Any], Record]]
    _many: ClassVar[Callable[[list[bytes | None], Callable[[bytes], Any]],
                             list[Record | None]]]
    _many_decoded: ClassVar[Callable[[list[Any]], list[Record | None]]]

    def asdict(self) -> dict[str, Any]:
        """Field values by name; nested Records become dicts."""
        raise NotImplementedError  # replaced by the generated method

    def to_representation(self) -> dict[str, Any]:
        """Field values as JSON types: datetimes as ISO strings, Decimal as str."""
        raise NotImplementedError  # replaced by the generated method

    def dumps(self, serializer: str | None = None) -> bytes:
        """Encode with ``serializer`` (default: the class's, else ``"json"``)."""
        return codecs.get(serializer or self._options.serializer or "json").dumps(self)

    @classmethod
    def loads(cls, data: bytes, serializer: str | None = None) -> Record:
        """Decode bytes into a record. Bad bytes raise DecodeError, bad fields
        ValidationError."""
        name = serializer or cls._options.serializer or "json"
        try:
            obj = codecs.get(name).loads(data)
        except Exception as exc:
            raise DecodeError(f"{cls.__name__}.loads: invalid {name}: {exc}") from exc
        return cls._from_wire(obj)

    def derive(self, *records: Record, **fields: Any) -> Record:
        """A copy with fields taken from ``records`` (same-named fields), then
        ``fields``; validated like any construction (Faust's ``derive``)."""
        values = {name: getattr(self, name) for name in self._fields}
        for other in records:
            values.update((name, getattr(other, name)) for name in other._fields
                          if name in values)
        values.update(fields)
        return type(self)(**values)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Record:
        """Build a record from a mapping of field values (unknown keys ignored)."""
        return cls._from_wire(dict(data) if isinstance(data, Mapping) else data)
