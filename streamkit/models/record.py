"""Record: a typed message value, declared with class annotations.

Every Record class is a msgspec ``Struct``: the json and msgpack codecs decode a
payload straight into an instance, in C, when every field's type is one msgspec reads
exactly as streamkit's converters would (decision 203); the rest goes through the
careful decoders below, which take every value the Record accepts. The metaclass
generates, for each class's own fields (``streamkit.models.generated``), the
constructor (``TaxiRide(...)``: validation and coercion of decision 201), the careful
decoders, ``__eq__``, ``__hash__``, ``__repr__`` and ``asdict``. Values live in the
Struct's fields, so ``ride.vendorId`` is a plain member read; the metaclass answers
class-level reads (``TaxiRide.vendorId``) with the field's FieldDescriptor.
"""
from __future__ import annotations

import copy
import functools
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from streamkit.errors import DecodeError, ImproperlyConfigured, ValidationError
from streamkit.models.fields import MISSING, FieldDescriptor, copies_default
from streamkit.models.generated import install_generated
from streamkit.serializers import codecs
from streamkit.serializers.converters import Invalid, make_converter, msgspec_reads_exactly

if TYPE_CHECKING:
    import inspect

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


#: Faust Record options streamkit refuses, with what to do instead: accepting them
#: would change no value, and a record would silently hold what the option was to fix.
_REFUSED_OPTIONS = {
    "coercions": "streamkit coerces ISO-8601 strings, Decimals, UUIDs, enums and nested "
                 "Records itself (coerce=True); for another type, declare the field "
                 "as that type or the value as it comes (MyType | str) and convert it "
                 "in __post_init__",
    "date_parser": "streamkit parses ISO-8601 strings and epoch numbers into datetime "
                   "fields; for another date format, declare the field as "
                   "datetime | str and parse the str in __post_init__",
}


def _inner_options(name: str, ns: dict[str, Any]) -> dict[str, Any]:
    """The options of an inner ``class Options:`` (Faust reads them, then the class
    keywords, which win); the inner class is removed from the Record."""
    inner = ns.pop("Options", None)
    if inner is None:
        return {}
    if not isinstance(inner, type):
        raise ImproperlyConfigured(f"{name}.Options: expected a class of Record "
                                   f"options, got {inner!r}")
    return {k: v for k, v in vars(inner).items() if not k.startswith("_")}


def _check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options streamkit does not take (Faust-only ones that change nothing
    here are accepted and ignored)."""
    for option, instead in _REFUSED_OPTIONS.items():
        if option in options:
            raise TypeError(f"{name}: the Record option {option}= is not supported: "
                            f"{instead}")
    unknown = set(options) - _FAUST_ONLY_OPTIONS
    if unknown:
        raise TypeError(f"{name}: unknown Record option(s) "
                        f"{', '.join(sorted(unknown))}; Record options are "
                        "serializer, validation, coerce and namespace")


def _restore(cls: type, fields: dict[str, Any]) -> Any:
    """A pickled record, its values as they were (``Record.__reduce__``)."""
    return msgspec.StructMeta.__call__(cls, **fields)


def _constructor_of(cls: type, _get: Callable[[type, str], Any] = type.__getattribute__
                    ) -> Callable[..., Any]:
    return _get(cls, "_sk_build")


class RecordMeta(msgspec.StructMeta):
    """Builds the fields and generated methods of every Record class."""

    # what __new__ sets on every class it builds (Record declares their types)
    _options: RecordOptions
    _fields: dict[str, FieldDescriptor]
    _from_wire: Callable[[Any], Record]
    _many: Callable[[list[bytes | None], Callable[[bytes], Any]], list[Record | None]]
    _many_decoded: Callable[[list[Any]], list[Record | None]]
    _sk_build: Callable[..., Record]
    _sk_careful: Callable[[], dict[str, Callable[..., Any]]]
    _sk_kw_only: bool
    _sk_decoders: dict[str | None, Callable[[bytes], Record] | None]

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                serializer: str | None = None, validation: bool | None = None,
                coerce: bool | None = None, namespace: str | None = None,
                **kwargs: Any) -> RecordMeta:
        inner = _inner_options(name, ns)  # Faust's inner ``class Options:``
        kwargs = {**inner, **kwargs}
        serializer = serializer if serializer is not None else kwargs.pop(
            "serializer", None)
        validation = validation if validation is not None else kwargs.pop(
            "validation", None)
        coerce = coerce if coerce is not None else kwargs.pop("coerce", None)
        namespace = namespace if namespace is not None else kwargs.pop("namespace", None)
        for option in ("serializer", "validation", "coerce", "namespace"):
            kwargs.pop(option, None)  # (given as a keyword too: the keyword won)
        _check_options(name, kwargs)
        annotations = ns.get("__annotations__", {})
        own, defaults = _prepare_namespace(name, bases, ns, annotations)
        kw_only = _needs_kw_only(bases, own, ns)
        try:
            cls = super().__new__(mcs, name, bases, ns, kw_only=kw_only)
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
        cls._sk_kw_only = kw_only
        cls._sk_decoders = {}
        # msgspec reads the annotations again when it builds a decoder: give it the
        # resolved types, so names local to a function resolve there too.
        cls.__annotations__ = {
            f: fields[f].type if f in fields else (
                a if not isinstance(a, str) else ClassVar)
            for f, a in annotations.items()}
        positional = not kw_only and cls.__struct_fields__ == tuple(fields)
        install_generated(cls, fields, positional)
        return cls

    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any],
                 **kwargs: Any) -> None:
        super().__init__(name, bases, ns)

    # TaxiRide(...) runs the generated constructor (validation, coercion); decoding
    # with msgspec makes instances without it. Python calls what ``__call__`` gives
    # for the class, with the caller's arguments as they are: a property handing out
    # the class's constructor costs one small call, where a ``__call__(cls, *args,
    # **kwargs)`` passing them on would pack and unpack them again.
    __call__ = property(_constructor_of)

    def __getattribute__(cls, name: str,
                         _get: Callable[[type, str], Any] = type.__getattribute__) -> Any:
        # Class-level reads only (instances never come here): TaxiRide.vendorId is
        # the field descriptor, not the member that holds instance values.
        try:
            fd = _get(cls, "_fields").get(name)
        except AttributeError:  # Record itself, while being created
            fd = None
        return fd if fd is not None else _get(cls, name)

    @property
    def __match_args__(cls) -> tuple[str, ...]:  # type: ignore[override]
        """``case TaxiRide(vendor, amount)`` matches fields in declaration order."""
        return tuple(cls._fields)

    @property
    def __signature__(cls) -> inspect.Signature:
        """The constructor's parameters: every field, by position or keyword."""
        import inspect  # only for introspection: not at import time of an app
        build = type.__getattribute__(cls, "_sk_build")
        sig = inspect.signature(build)
        return sig.replace(parameters=[p for p in sig.parameters.values()
                                       if not p.name.startswith(_PREFIX)])

    def __dir__(cls) -> list[str]:
        return sorted(set(super().__dir__()) | set(cls._fields))


def _prepare_namespace(name: str, bases: tuple[type, ...], ns: dict[str, Any],
                       annotations: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Check the class body and set it up for msgspec: its fields (in order) and the
    defaults given in it. msgspec sees the field annotations only; every default, a
    redeclared field's inherited one too, is in ``ns``, copied per instance when it is
    mutable."""
    if "__slots__" in ns:
        raise ImproperlyConfigured(f"{name}: a Record holds its fields itself; "
                                   "remove __slots__")
    own = [f for f, a in annotations.items() if not _is_classvar(a)]
    _check_names(name, own, ns)
    defaults = {f: ns[f] for f in own if f in ns}
    for field in own:  # a redeclared field keeps its parent's default
        if field not in ns:
            for base in bases:
                fd = getattr(base, "_fields", {}).get(field)
                if fd is not None and not fd.required:
                    ns[field] = fd.default
                    break
    for field in own:
        if field in ns and copies_default(ns[field]):
            ns[field] = msgspec.field(
                default_factory=functools.partial(copy.deepcopy, ns[field]))
    ns["__annotations__"] = {f: annotations[f] for f in own}
    return own, defaults


def _needs_kw_only(bases: tuple[type, ...], own: list[str], ns: dict[str, Any]) -> bool:
    """Whether msgspec must take this class's fields by keyword: a required field
    follows one with a default (msgspec's positional constructor cannot have that),
    or a parent already needed it."""
    has_default: dict[str, bool] = {}
    for base in reversed(bases):
        if getattr(base, "_sk_kw_only", False):
            return True
        for fd in getattr(base, "_fields", {}).values():
            has_default[fd.field] = not fd.required
    for field in own:
        has_default[field] = field in ns
    seen_default = False
    for with_default in has_default.values():
        if seen_default and not with_default:
            return True
        seen_default = seen_default or with_default
    return False


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


def _checker(cls: type, fd: FieldDescriptor) -> Callable[[Any], Any]:
    """The constructor's conversion of one field (raising Invalid), for validate();
    made at the first call, kept on the class."""
    checkers = cls.__dict__.get("_sk_checkers")
    if checkers is None:
        checkers = {}
        type.__setattr__(cls, "_sk_checkers", checkers)
    check = checkers.get(fd.field)
    if check is None:
        check = checkers[fd.field] = make_converter(
            fd.type, cls._options.coerce)  # type: ignore[attr-defined]
    return check


_RESERVED: set[str] = set()


def _reserved_names() -> set[str]:
    if not _RESERVED and "Record" in globals():
        _RESERVED.update(n for n in dir(Record) if not n.startswith("__"))
    return _RESERVED


class Record(msgspec.Struct, metaclass=RecordMeta):
    """Base class of typed records. Declare fields as annotations::

        class TaxiRide(Record, serializer="json"):
            vendorId: int
            total_amount: float = 0.0
            pickup: datetime | None = None

    Class options: ``serializer=``, ``validation=``, ``coerce=``, ``namespace=``
    (see :class:`RecordOptions`). ``Record._fields`` maps field names, in
    declaration order, to their :class:`FieldDescriptor`.
    """

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

    def __reduce__(self) -> tuple[Callable[..., Record], tuple[type, dict[str, Any]]]:
        # pickle and deepcopy: the values as they are (no validation: fields may have
        # been reassigned), through msgspec's constructor, which runs __post_init__
        return (_restore, (type(self), self._streamkit_fields_()))

    def _streamkit_fields_(self) -> dict[str, Any]:
        raise NotImplementedError  # replaced by the generated method

    def validate(self) -> list[ValidationError]:
        """The fields whose current value the constructor would refuse, as
        ``ValidationError``s (empty: all valid). A record is checked when it is built
        or decoded; this checks again, after fields were reassigned, and also for a
        class declared with ``validation=False`` (Faust's ``validate()``)."""
        errors = []
        for fd in self._fields.values():
            value = getattr(self, fd.field)
            try:
                _checker(type(self), fd)(value)
            except Invalid as exc:
                err = ValidationError(exc.message(f"{type(self).__name__}.{fd.field}"))
                err.record, err.field, err.value = type(self).__name__, fd.field, value
                errors.append(err)
        return errors

    def is_valid(self) -> bool:
        """Whether :meth:`validate` finds nothing."""
        return not self.validate()

    def validate_or_raise(self) -> None:
        """Raise the first error :meth:`validate` finds."""
        errors = self.validate()
        if errors:
            raise errors[0]

    @property
    def validation_errors(self) -> list[ValidationError]:
        """:meth:`validate`'s list (Faust's property)."""
        return self.validate()

    def dumps(self, serializer: str | None = None) -> bytes:
        """Encode with ``serializer`` (default: the class's, else ``"json"``)."""
        return codecs.get(serializer or self._options.serializer or "json").dumps(self)

    @classmethod
    def loads(cls, data: bytes, serializer: str | None = None) -> Record:
        """Decode bytes into a record. Bad bytes raise DecodeError, bad fields
        ValidationError."""
        name = serializer or cls._options.serializer or "json"
        codec = codecs.get(name)
        decode = cls._fast_decoder(codecs.format_of(codec))
        if decode is not None:
            try:
                return decode(data)
            except Exception:  # noqa: BLE001 - the careful way below decides
                pass
        try:
            obj = codec.loads(data)
        except Exception as exc:
            raise DecodeError(f"{cls.__name__}.loads: invalid {name}: {exc}") from exc
        return cls._from_wire(obj)

    @classmethod
    def _fast_decoder(cls, fmt: str | None) -> Callable[[bytes], Record] | None:
        """msgspec's decoder of ``fmt`` ("json" or "msgpack") payloads into this
        class, or None when a field's type is one msgspec does not read exactly as
        the careful decoders do (decision 203). It raises on anything else than a
        well-formed, well-typed payload: the caller then decodes the careful way.
        Built on first use, so declaring a Record does not pay for it."""
        decoders = type.__getattribute__(cls, "_sk_decoders")
        try:
            return decoders[fmt]
        except KeyError:
            pass
        decode = None
        if fmt is not None and all(msgspec_reads_exactly(fd.type, fmt)
                                   for fd in cls._fields.values()):
            module = msgspec.json if fmt == "json" else msgspec.msgpack
            try:
                decode = module.Decoder(cls).decode
            except (TypeError, NameError, ValueError):  # a type msgspec cannot build
                decode = None
        decoders[fmt] = decode
        return decode

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
