"""Serde: how a topic turns its keys or values into bytes and back.

``Serde(type_, serializer)`` picks one specialised decode function when it is built,
so decoding a message is one codec call plus, for Records, one generated constructor.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamkit.errors import DecodeError, ValidationError
from streamkit.serializers import codecs
from streamkit.serializers.converters import Invalid, make_converter

__all__ = ["Serde"]


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
                 "_dumps_one", "_many")

    loads: Callable[[bytes | None], Any]

    def __init__(self, type_: Any = None, serializer: str | codecs.Codec | None = None
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
        self._loads_one = self._make_loads()
        # A codec may offer quicker decoders: ``fast_loads`` (one payload) and
        # ``fast_loads_many`` (a batch). They may fail on unusual input that ``loads``
        # accepts (a failure is retried the careful way) but never decode to a
        # different value.
        self._many = None
        if _is_record_type(type_):
            self._many = self._make_many(type_)
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
            build = self.type_._from_wire
            unpack = getattr(self.codec, "fast_loads", None) or self.codec.loads

            def loads_record(data: bytes | None) -> Any:
                """Decode one payload; ``None`` (a tombstone) stays ``None``."""
                if data is None:
                    return None
                try:
                    return build(unpack(data))  # one frame less than via ``fast``
                except Exception:  # noqa: BLE001 - retried the careful way below
                    pass
                try:
                    return one(data)
                except Exception as exc:
                    raise fail(data, exc) from exc
            return loads_record

        def loads(data: bytes | None) -> Any:
            """Decode one payload; ``None`` (no key, a tombstone) stays ``None``."""
            if data is None:
                return None
            try:
                return one(data)
            except Exception as exc:
                raise fail(data, exc) from exc
        return loads

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
        one, many = self._loads_one, self._many
        try:
            if many is not None:
                return many(datas)
            return [None if data is None else one(data) for data in datas]
        except Exception:  # noqa: BLE001 - rare: find the bad payloads one by one
            pass
        out: list[Any] = []
        for i, data in enumerate(datas):
            if data is None:
                out.append(None)
                continue
            try:
                out.append(one(data))
            except Exception as exc:
                err = self._failure(data, exc)
                err.__cause__ = exc
                if errors is None:
                    raise err from exc
                errors.append((i, err))
                out.append(err)
        return out

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
