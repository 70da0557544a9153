"""Serde: how a topic turns its keys or values into bytes and back.

``Serde(type_, serializer)`` picks one specialised decode function when it is built,
so decoding a message is one codec call plus, for Records, one generated constructor.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from streamkit.errors import DecodeError, ValidationError
from streamkit.serializers import codecs
from streamkit.serializers.converters import Invalid, make_converter

__all__ = ["Serde"]

#: Serde.loads of a Record skips msgspec after this many refusals in a row, trying it
#: again once every _PROBE_EVERY payloads
_REFUSALS = 2
_PROBE_EVERY = 64


def _is_record_type(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "_from_wire") and hasattr(tp, "_fields")


class Serde:
    """Encoder/decoder of one side (key or value) of a topic's messages.

    ``type_``:
      - a Record class: decode with ``serializer``, else the Record's own, else json;
      - ``str``: UTF-8 text (with an explicit serializer other than "raw": that
        codec's string);
      - ``bytes``: the bytes as they are;
      - ``int``/``float``/other types: decoded with the serializer (json by default)
        and converted (``"5"`` -> 5 for int);
      - ``None``: whatever the serializer gives (json by default: dicts, lists,
        numbers, strings).

    ``dumps`` passes bytes through unchanged (already encoded) and ``None`` as
    ``None``. Decode failures raise :class:`~streamkit.errors.DecodeError` with the
    cause chained and named in the message.
    """

    __slots__ = ("type_", "serializer", "codec", "loads", "_describe", "_loads_one",
                 "_dumps_one", "_many", "_fast")

    loads: Callable[[bytes | None], Any]

    def __init__(self, type_: Any = None, serializer: str | codecs.CodecLike | None = None
                 ) -> None:
        self.type_ = type_
        if _is_record_type(type_):
            name = serializer or type_._options.serializer or "json"
        elif type_ in (str, bytes):
            name = serializer or "raw"
        else:
            name = serializer or "json"
        self.serializer = name
        self.codec = codecs.get(name)
        label = name if isinstance(name, str) else type(name).__name__
        tname = getattr(type_, "__name__", None) or repr(type_)
        self._describe = f"{tname} ({label})" if type_ is not None else label
        #: msgspec's decoder straight into the Record (decision 203), or None
        self._fast: Callable[[bytes], Any] | None = None
        if _is_record_type(type_):
            # (hooks of the Record class, reached by duck typing: no models import)
            self._fast = type_._fast_decoder(  # noqa: SLF001
                codecs.format_of(self.codec))
            if self._fast is None:  # the generated decoders do all the work:
                type_._sk_careful()  # noqa: SLF001 - compile them now
        self._loads_one = self._make_loads()
        # A codec may offer quicker decoders: ``fast_loads`` (one payload) and
        # ``fast_loads_many`` (a batch). They may fail on unusual input that ``loads``
        # accepts (a failure is retried the careful way) but never decode to a
        # different value.
        self._many = None
        if _is_record_type(type_):
            self._many = self._make_many(type_)
        elif type_ is str and self.serializer == "raw":
            # (str keys: one listcomp per batch; anything but bytes and None, or bad
            # UTF-8, raises and the batch is decoded one by one, the careful way)
            self._many = _utf8_strings
        self._dumps_one = self._make_dumps()
        self.loads = self._make_checked_loads()

    def __repr__(self) -> str:
        return (f"Serde(type_={getattr(self.type_, '__name__', self.type_)}, "
                f"serializer={self.serializer!r})")

    # ------------------------------------------------------------------ decoding

    def _make_many(self, record: Any) -> Callable[[list[bytes | None]], list[Any]]:
        """The batch decoder of a Record topic: one generated loop per batch."""
        codec = self.codec
        fast_many = getattr(codec, "fast_loads_many", None)
        if fast_many is not None:
            decoded = record._many_decoded
            return lambda datas: decoded(fast_many(datas))
        many = record._many
        fast = getattr(codec, "fast_loads", None) or codec.loads
        return lambda datas: many(datas, fast)

    def _make_loads(self) -> Callable[[bytes], Any]:
        """The bare decode function for one non-None payload (may raise anything)."""
        tp, codec = self.type_, self.codec
        decode = codec.loads
        raw = self.serializer == "raw"
        if _is_record_type(tp):
            build = tp._from_wire
            return lambda data: build(decode(data))
        if tp is bytes:
            if raw:
                return lambda data: data if type(data) is bytes else bytes(data)
            return self._converted(decode, bytes)
        if tp is str:
            if raw:
                return lambda data: data.decode() if type(data) is bytes else bytes(
                    data).decode()
            return self._converted(decode, str)
        if tp is None:
            return decode
        return self._converted(decode, tp)

    @staticmethod
    def _converted(decode: Callable[[bytes], Any], tp: Any) -> Callable[[bytes], Any]:
        convert = make_converter(tp, True)

        def decode_converted(data: bytes) -> Any:
            value = decode(data)
            if type(value) is tp:
                return value
            try:
                return convert(value)
            except Invalid as exc:
                raise ValidationError(exc.message("value")) from None
        return decode_converted

    def _make_checked_loads(self) -> Callable[[bytes | None], Any]:
        one = self._loads_one
        fail = self._failure
        if _is_record_type(self.type_):
            return self._make_record_loads()

        def loads(data: bytes | None) -> Any:
            """Decode one payload; ``None`` (no key, a tombstone) stays ``None``."""
            if data is None:
                return None
            try:
                return one(data)
            except Exception as exc:
                raise fail(data, exc) from exc
        return loads

    def _make_record_loads(self) -> Callable[[bytes | None], Any]:
        """One payload into a Record: msgspec's decoder, else the generated one after
        the codec's fast decoder, else the careful way (which names the error)."""
        one, fail, fast = self._loads_one, self._failure, self._fast
        build = self.type_._from_wire
        unpack = getattr(self.codec, "fast_loads", None) or self.codec.loads
        # Payloads msgspec refuses come in runs (a producer sending every number as
        # a string): after two refusals in a row, skip msgspec for a while.
        refusals = [0]

        def loads_record(data: bytes | None) -> Any:
            """Decode one payload; ``None`` (a tombstone) stays ``None``."""
            if data is None:
                return None
            if fast is not None:
                if refusals[0] < _REFUSALS or not refusals[0] % _PROBE_EVERY:
                    try:
                        value = fast(data)
                        refusals[0] = 0
                        return value
                    except Exception:  # noqa: BLE001 - decided below
                        pass
                refusals[0] += 1
            try:
                return build(unpack(data))
            except Exception:  # noqa: BLE001 - retried the careful way below
                pass
            try:
                return one(data)
            except Exception as exc:
                raise fail(data, exc) from exc
        return loads_record

    def loads_again(self) -> Callable[[bytes], Any]:
        """``loads`` for payloads it decoded once already (a stream-stream join's
        buffered values, decoded again when they join): msgspec's decoder straight
        away, without the bookkeeping of refusals, and ``loads`` if it refuses."""
        fast, loads = self._fast, self.loads
        if fast is None:
            return loads

        def load_again(data: bytes) -> Any:
            """Decode a payload decoded once already."""
            try:
                return fast(data)
            except Exception:  # noqa: BLE001 - the usual way, which names any error
                return loads(data)
        return load_again

    def _failure(self, data: bytes, exc: BaseException) -> DecodeError:
        err = DecodeError(f"cannot decode {self._describe}: {exc}")
        err.cause = exc
        err.data = data
        return err

    def loads_many(self, datas: list[bytes | None],
                   errors: list[tuple[int, DecodeError]] | None = None) -> list[Any]:
        """Decode a batch. A payload that fails raises DecodeError, unless ``errors``
        is given: then ``(index, DecodeError)`` is appended to it, the result holds
        the DecodeError at that index, and the rest of the batch is decoded.
        """
        if self._fast is not None:
            return self._loads_many_fast(datas, errors)
        return self._loads_many_generated(datas, errors, 0)

    def _loads_many_generated(self, datas: list[bytes | None],
                              errors: list[tuple[int, DecodeError]] | None,
                              offset: int) -> list[Any]:
        """A batch through the codec and the generated loop; payloads one by one
        when any fails (``offset``: the index of ``datas[0]`` in the caller's batch)."""
        one, many = self._loads_one, self._many
        try:
            if many is not None:
                return many(datas)
            return [None if data is None else one(data) for data in datas]
        except Exception:  # noqa: BLE001 - rare: find the bad payloads one by one
            pass
        return [self._careful(offset + i, data, errors) for i, data in enumerate(datas)]

    def _loads_many_fast(self, datas: list[bytes | None],
                         errors: list[tuple[int, DecodeError]] | None) -> list[Any]:
        """A batch through msgspec, one C call per payload. A payload it refuses (a
        tombstone, a value to coerce, a bad payload) is decoded the careful way and
        the loop goes on after it, so no payload is decoded (nor ``__post_init__``
        run) twice. Two refusals in a row (a producer sending numbers as strings):
        the rest of the batch goes through the generated loop, quicker for those."""
        fast = self._fast
        assert fast is not None
        out: list[Any] = []
        append, extend = out.append, out.extend
        rest: Any = datas
        refused = -2
        while True:
            try:
                # (a loop in C: extend keeps the values decoded before a refusal)
                extend(map(fast, rest))
                return out
            except Exception:  # noqa: BLE001 - decided below
                pass
            i = len(out)  # the payload fast() refused
            if refused == i - 1:
                out += self._loads_many_generated(datas[i:], errors, i)
                return out
            refused = i
            append(self._careful(i, datas[i], errors))
            if i + 1 == len(datas):
                return out
            rest = itertools.islice(datas, i + 1, None)

    def _careful(self, i: int, data: bytes | None,
                 errors: list[tuple[int, DecodeError]] | None) -> Any:
        """Payload ``i`` of a batch decoded alone: its value, or its DecodeError
        (raised without ``errors``, else added to them and returned)."""
        if data is None:
            return None
        try:
            return self._loads_one(data)
        except Exception as exc:
            err = self._failure(data, exc)
            err.__cause__ = exc
            if errors is None:
                raise err from exc
            errors.append((i, err))
            return err

    # ------------------------------------------------------------------ encoding

    def _make_dumps(self) -> Callable[[Any], bytes]:
        tp, codec = self.type_, self.codec
        encode = codec.dumps
        if _is_record_type(tp):
            # The built-in codecs take the field dict directly (no default-hook trip);
            # other codecs get the Record itself.
            builtin = type(codec) in (codecs.JSONCodec, codecs.MsgpackCodec)

            def dumps_record(obj: Any) -> bytes:
                if type(obj) is tp and builtin:
                    return encode(obj._streamkit_fields_())
                if isinstance(obj, tp):
                    return encode(obj)
                if isinstance(obj, dict):
                    return encode(tp.from_data(obj))  # validate before it leaves
                raise TypeError(f"expected {tp.__name__} (or a dict of its fields), "
                                f"got {type(obj).__name__} {obj!r:.80}")
            return dumps_record
        if tp in (str, bytes) and self.serializer == "raw":
            def dumps_text(obj: Any) -> bytes:
                if isinstance(obj, str):
                    return obj.encode()
                if isinstance(obj, (bytearray, memoryview)):
                    return bytes(obj)
                raise TypeError(f"expected {tp.__name__}, got {type(obj).__name__} "
                                f"{obj!r:.80}")
            return dumps_text
        return encode

    def dumps(self, obj: Any) -> bytes | None:
        """Encode ``obj``; bytes pass through as already encoded, None stays None."""
        if obj is None or type(obj) is bytes:
            return obj
        return self._dumps_one(obj)


def _utf8_strings(datas: list[bytes | None]) -> list[str | None]:
    """Raw payloads as text, ``None`` kept."""
    try:
        return list(map(bytes.decode, datas))  # type: ignore[arg-type]  # (a loop in C)
    except TypeError:   # a None (a record with no key) among them, or not bytes
        return [None if data is None else data.decode() for data in datas]
