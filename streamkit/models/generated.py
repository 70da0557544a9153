"""The code each Record class gets for its own fields.

The constructor (``TaxiRide(...)``) and the careful decoders (``_from_wire`` and the
batch loops ``_many``/``_many_decoded``, which take the payloads msgspec does not decode
itself) check each value with an inline ``type(v) is T`` and call the field's
converter only when that fails, so a well-formed value costs no function call. The
instance is then made by msgspec's own constructor (``StructMeta.__call__``), which
stores the values in C and runs ``__post_init__``. ``__eq__``, ``__hash__``,
``__repr__``, ``asdict``, ``to_representation`` and ``_streamkit_fields_`` are
generated too, in the Record's field order.
"""
from __future__ import annotations

import base64
import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from msgspec import StructMeta

from streamkit.errors import ValidationError
from streamkit.models.fields import MISSING, FieldDescriptor
from streamkit.serializers import codecs
from streamkit.serializers.converters import (
    FAST_TYPES,
    Invalid,
    describe,
    make_converter,
    parse_datetime,
)

__all__ = ["install_generated"]


def _is_record_class(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "_streamkit_fields_") and hasattr(
        tp, "_fields")


def _fast_type(tp: Any) -> tuple[Any, bool]:
    """(T, optional) when values can be checked inline with ``type(v) is T``."""
    optional = False
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            return None, False
        tp, optional = args[0], True
    if tp in FAST_TYPES or _is_record_class(tp) or (
            isinstance(tp, type) and issubclass(tp, enum.Enum)):
        return tp, optional
    return None, False


def _field_converter(cls: Any, fd: FieldDescriptor) -> Callable[[Any], Any]:
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
        # The wire form of a datetime is an ISO string: parse it without a call chain
        # (parse_datetime reads it as msgspec does, decision 203).
        # Text of up to 26 characters ("2020-07-01 00:25:32.500000") reads the same
        # with fromisoformat as with msgspec, which takes only what fromisoformat
        # refuses (parse_datetime, decision 203): no Python call for the usual forms.
        return [
            f"{indent}if _sk_type({var}) is _sk_str:",
            (f"{indent}    try: {var} = _sk_fromiso({var}) if _sk_len({var}) < 27 "
             f"else _sk_parse_dt({var})"),
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
                indent: str, coerce: bool) -> list[str]:
    """Read every field from dict ``d`` into ``_sk_v<i>`` (KeyError when one is absent)."""
    lines = []
    for i, name in enumerate(fields):
        tp, optional, check = fast[i]
        lines.append(f"{indent}_sk_v{i} = d[{name!r}]")
        if check:
            lines += _check_lines(f"_sk_v{i}", i, tp, optional, indent, coerce)
    return lines


def _make_call(names: list[str], values: list[str], positional: bool) -> str:
    """msgspec's constructor called with ``values`` for the fields ``names``."""
    if positional:
        return f"_sk_make(_sk_cls, {', '.join(values)})" if values else "_sk_make(_sk_cls)"
    return "_sk_make(_sk_cls, " + ", ".join(
        f"{n}={v}" for n, v in zip(names, values, strict=True)) + ")"


def _constructor_lines(cls: Any, fields: dict[str, FieldDescriptor],
                       fast: list[tuple[Any, bool, bool]], env: dict[str, Any],
                       call: str) -> list[str]:
    """``__init__(vendorId=MISSING, ...)``: defaults, checks, then msgspec's call."""
    coerce = cls._options.coerce
    params, body = [], []
    for i, (name, fd) in enumerate(fields.items()):
        tp, optional, check = fast[i]
        copy_default = fd._copy_default  # noqa: SLF001 - the descriptor made in this unit
        if fd.required or copy_default:
            params.append(f"{name}=_sk_MISSING")
            if copy_default:
                body.append(f"    if {name} is _sk_MISSING: "
                            f"{name} = _sk_f{i}.default_value()")
            elif not check:
                body.append(f"    if {name} is _sk_MISSING: _sk_c{i}({name})")
        else:
            env[f"_sk_d{i}"] = fd.default
            params.append(f"{name}=_sk_d{i}")
        if check:
            body += _check_lines(name, i, tp, optional, "    ", coerce)
    # Field names are this function's parameters: the constructor's own names are
    # bound as defaults after them, under the _sk_ prefix no field may use.
    binds = ["_sk_make=_sk_make", "_sk_cls=_sk_cls"]
    header = ", ".join(params + (["*"] if params else []) + binds) if params else (
        "*, " + ", ".join(binds))
    return [f"def __init__({header}):", *body, f"    return {call}"]


def _decoder_lines(fields: dict[str, FieldDescriptor], fast: list[tuple[Any, bool, bool]],
                   coerce: bool, call: str, binds: str) -> list[str]:
    """``_from_wire(d)`` and the batch loops ``_many``/``_many_decoded``."""
    src = [
        "def _from_wire(d):",
        "    if type(d) is not dict: return _sk_slow(d)",
        "    try:",
        *_wire_lines(fields, fast, "        ", coerce),
        "        pass",
        "    except KeyError:",
        "        return _sk_slow(d)",
        f"    return {call}",
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
            "        try:",
            *_wire_lines(fields, fast, "            ", coerce),
            "            pass",
            "        except KeyError:",
            "            append(_sk_slow(d))",
            "            continue",
            f"        append({call})",
            "    return out",
        ]
    return src


_DECODERS = ("_from_wire", "_many", "_many_decoded")


def install_generated(cls: Any, fields: dict[str, FieldDescriptor],
                      positional: bool) -> None:
    """Generate and set the constructor and value methods of ``cls`` now, and its
    careful decoders (``_from_wire``: a decoded mapping; ``_many``: payloads and a
    codec function; ``_many_decoded``: what a codec's ``fast_loads_many`` decoded)
    when first used, or when ``cls._sk_careful()`` asks for them.

    ``positional``: msgspec's constructor takes the fields by position in this order
    (else by keyword: a class with a required field after one with a default).
    """
    names = list(fields)
    env: dict[str, Any] = {
        "_sk_cls": cls, "_sk_MISSING": MISSING, "_sk_make": StructMeta.__call__,
        "_sk_parse_dt": parse_datetime, "_sk_fromiso": datetime.fromisoformat,
        "_sk_len": len, "_sk_plain": _plain,
        "_sk_jsonable": _jsonable, "_sk_Mapping": Mapping,
        "_sk_ValidationError": ValidationError, "_sk_describe": describe,
        # Builtins under private names: a field may be called `type` or `str`.
        "_sk_type": type, "_sk_str": str, "_sk_int": int, "_sk_float": float,
        "_sk_ValueError": ValueError, "_sk_OverflowError": OverflowError,
    }
    fast = []
    for i, fd in enumerate(fields.values()):
        tp, optional = _fast_type(fd.type)
        fast.append((tp, optional, fd.type is not Any and fd.type is not object))
        env[f"_sk_T{i}"] = tp
        env[f"_sk_c{i}"] = _field_converter(cls, fd)
        env[f"_sk_f{i}"] = fd
    src = _constructor_lines(cls, fields, fast, env, _make_call(names, names, positional))
    src += _value_lines(cls, fields)
    code = compile("\n".join(src), f"<streamkit record {cls.__qualname__}>", "exec")
    exec(code, env)  # noqa: S102 - source built above from field names only
    for fn_name in ("__eq__", "__ne__", "__hash__", "__repr__", "asdict",
                    "to_representation", "_streamkit_fields_"):
        fn = env[fn_name]
        fn.__qualname__ = f"{cls.__qualname__}.{fn_name}"
        setattr(cls, fn_name, fn)
    build = env["__init__"]
    build.__qualname__ = f"{cls.__qualname__}.__init__"
    build.__doc__ = f"Build a {cls.__name__} from field values (validated)."
    cls._sk_build = staticmethod(build)
    # The careful decoders are most of the source to compile (about three quarters
    # of a class's creation time), and a class msgspec decodes may never need them:
    # they are compiled on first use. Until then the class holds stand-ins that
    # compile them; the stand-ins then take over the compiled code (__code__ and
    # defaults), so a caller that kept one (a Serde) calls the real decoder directly.
    made: dict[str, Callable[..., Any]] = {}

    def compile_decoders() -> dict[str, Callable[..., Any]]:
        if not made:
            made.update(_compile_decoders(cls, fields, fast, env, positional))
            for name, real in made.items():
                stand_in = stand_ins[name]
                stand_in.__code__ = real.__code__
                stand_in.__defaults__ = real.__defaults__
                stand_in.__kwdefaults__ = real.__kwdefaults__
                setattr(cls, name, staticmethod(real))
        return made

    env["_sk_compile"] = compile_decoders
    exec("\n".join(f"def {name}(*args):\n    return _sk_compile()[{name!r}](*args)"  # noqa: S102
                   for name in _DECODERS), env)
    stand_ins = {name: env[name] for name in _DECODERS}
    for name, stand_in in stand_ins.items():
        setattr(cls, name, staticmethod(stand_in))
    cls._sk_careful = compile_decoders


def _compile_decoders(cls: Any, fields: dict[str, FieldDescriptor],
                      fast: list[tuple[Any, bool, bool]], env: dict[str, Any],
                      positional: bool) -> dict[str, Callable[..., Any]]:
    names = list(fields)
    not_a_mapping = f"{cls.__name__}: expected a mapping of fields, got "
    src = [
        "def _sk_slow(d):",
        "    if not isinstance(d, _sk_Mapping):",
        f"        raise _sk_ValidationError({not_a_mapping!r} + _sk_describe(d))",
        f"    return _sk_cls(**{{k: d[k] for k in {tuple(names)!r} if k in d}})",
    ]
    # Hot loops read these as locals (bound as defaults): no global lookups.
    binds = ", ".join(["_sk_make=_sk_make", "_sk_cls=_sk_cls", "_sk_slow=_sk_slow",
                       "_sk_parse_dt=_sk_parse_dt", "_sk_fromiso=_sk_fromiso",
                       "_sk_len=_sk_len", "_sk_type=_sk_type",
                       "_sk_str=_sk_str", "_sk_int=_sk_int", "_sk_float=_sk_float"]
                      + [f"_sk_{k}{i}=_sk_{k}{i}" for i in range(len(names))
                         for k in ("T", "c")])
    call = _make_call(names, [f"_sk_v{i}" for i in range(len(names))], positional)
    src += _decoder_lines(fields, fast, cls._options.coerce, call, binds)
    code = compile("\n".join(src), f"<streamkit record {cls.__qualname__} decoders>",
                   "exec")
    exec(code, env)  # noqa: S102 - source built above from field names only
    return {name: env[name] for name in _DECODERS}


def _value_lines(cls: Any, fields: dict[str, FieldDescriptor]) -> list[str]:
    names = list(fields)

    def values(obj: str) -> str:
        return ", ".join(f"{obj}.{n}" for n in names)

    def tuple_of(obj: str) -> str:
        return f"({values(obj)},)" if names else "()"

    return [
        "def __eq__(self, other):",
        "    if other.__class__ is not self.__class__: return NotImplemented",
        f"    return {tuple_of('self')} == {tuple_of('other')}",
        "def __ne__(self, other):",
        "    if other.__class__ is not self.__class__: return NotImplemented",
        f"    return {tuple_of('self')} != {tuple_of('other')}",
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


_PLAIN_TYPES = (int, float, str, bool, bytes, datetime, date, time, Decimal, UUID)


def _is_plain(tp: Any) -> bool:
    """True when asdict() can return the value as it is (no Record inside)."""
    if tp in _PLAIN_TYPES:
        return True
    args = typing.get_args(tp)
    return bool(args) and typing.get_origin(tp) in (typing.Union, types.UnionType) and all(
        a is type(None) or a in _PLAIN_TYPES for a in args)


def _is_jsonable(tp: Any) -> bool:
    json_types = (int, float, str, bool)
    if tp in json_types:
        return True
    args = typing.get_args(tp)
    return bool(args) and typing.get_origin(tp) in (typing.Union, types.UnionType) and all(
        a is type(None) or a in json_types for a in args)


def _plain(value: Any) -> Any:
    """asdict() of a value: Records become dicts, containers are walked."""
    if _is_record_class(type(value)):
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
    if _is_record_class(type(value)):
        return value.to_representation()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k if isinstance(k, (str, int, float, bool)) else str(_jsonable(k)):
                _jsonable(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    return codecs.wire_form(value)
