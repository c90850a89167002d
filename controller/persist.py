"""Durable state as plain data: what a controller keeps across a crash, and how it is encoded.

A controller declares its durable state once, as a mapping from attribute path to type
(:attr:`controller.camera.Camera.DURABLE`)::

    DURABLE = {
        "state": State,
        "windows": dict[str, float | None],
        "rec": Recording | None,          # a msgspec Struct
        "uploads": deque[list[float]],
        "audit.head": str,                # a dotted path reaches into a part of the object
        ...
    }

:class:`StateCodec` builds a msgspec Struct from that mapping and encodes the object's values as
MessagePack (exact floats, integer and string keys kept apart, one C call each way). Whatever
msgspec encodes — numbers, strings, lists, tuples, dicts, sets, enums, Structs, unions with
``None`` — needs nothing more; a ``deque`` is stored as a list and an ``OrderedDict`` as a dict, and
each comes back as it was. A part that is not plain data but can say what it holds is declared
:class:`Via` its own methods (``Via(list[Remembered], ReplyTable.entries, ReplyTable.restore)``):
it is stored as what ``dump`` returns and given back to ``load`` on the freshly built object. So
adding state to a controller is one more line in its mapping.

Snapshots outlive the code that wrote them. Every field is optional on decoding: a snapshot
written before a field existed restores with that attribute as the freshly built object has it,
and a field a newer snapshot has but this code no longer knows is ignored. A snapshot of another
kind of object (another ``name``) is refused.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_args, get_origin

import msgspec

from .errors import InvalidInput

__all__ = ["StateCodec", "Via"]


@dataclass(frozen=True)
class Via:
    """A durable part kept through its own methods: stored as ``dump(part)`` (of type ``type``),
    restored with ``load(part, stored)`` on the part the fresh object already has."""

    type: Any
    dump: Callable[[Any], Any]
    load: Callable[[Any, Any], None]


class _Envelope(msgspec.Struct, array_like=True):
    name: str
    version: int
    body: msgspec.Raw


class StateCodec:
    """Encodes the durable attributes of one kind of object (see the module docstring)."""

    def __init__(self, name: str, fields: Mapping[str, Any], version: int = 1) -> None:
        self.name = name
        self.version = version
        self._paths: dict[str, list[str]] = {}
        self._rebuild: dict[str, Callable[[Any], Any]] = {}  # stored form -> the live type
        self._via: dict[str, Via] = {}
        spec: list[tuple[str, Any, Any]] = []
        for path, tp in fields.items():
            key = path.replace(".", "__")
            self._paths[key] = path.split(".")
            if isinstance(tp, Via):
                self._via[key] = tp
                tp = tp.type
            elif get_origin(tp) is deque:
                self._rebuild[key] = deque
                tp = list[get_args(tp)] if get_args(tp) else list  # type: ignore[misc]
            elif get_origin(tp) is OrderedDict:
                self._rebuild[key] = OrderedDict
                tp = dict[get_args(tp)] if get_args(tp) else dict  # type: ignore[misc]
            spec.append((key, tp | msgspec.UnsetType, msgspec.UNSET))
        self._type: type[msgspec.Struct] = msgspec.defstruct(
            f"{name}State", spec, kw_only=True, forbid_unknown_fields=False
        )
        self._encoder = msgspec.msgpack.Encoder()
        self._body_decoder = msgspec.msgpack.Decoder(self._type)
        self._envelope_decoder = msgspec.msgpack.Decoder(_Envelope)

    def dump(self, obj: object) -> bytes:
        """The durable state of ``obj`` as bytes."""
        values: dict[str, Any] = {}
        for key, path in self._paths.items():
            value = _get(obj, path)
            via = self._via.get(key)
            if via is not None:
                value = via.dump(value)
            elif key in self._rebuild:
                value = list(value) if isinstance(value, deque) else dict(value)
            values[key] = value
        body = self._encoder.encode(self._type(**values))
        return self._encoder.encode(_Envelope(self.name, self.version, msgspec.Raw(body)))

    def load(self, obj: object, data: bytes) -> None:
        """Set the durable attributes of ``obj`` from ``data`` (written by :meth:`dump`)."""
        try:
            envelope = self._envelope_decoder.decode(data)
            if envelope.name != self.name:
                raise InvalidInput(f"a snapshot of {envelope.name!r}, not of {self.name!r}", "state")
            state = self._body_decoder.decode(envelope.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise InvalidInput(f"unreadable snapshot: {exc}", "state") from None
        for key, path in self._paths.items():
            value = getattr(state, key)
            if value is msgspec.UNSET:
                continue  # written before this field existed: keep what the fresh object has
            via = self._via.get(key)
            if via is not None:
                via.load(_get(obj, path), value)
                continue
            rebuild = self._rebuild.get(key)
            _set(obj, path, rebuild(value) if rebuild is not None else value)


def _get(obj: object, path: list[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _set(obj: object, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        obj = getattr(obj, part)
    setattr(obj, path[-1], value)
