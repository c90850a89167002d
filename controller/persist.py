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
``None`` — needs nothing more; a ``deque`` is stored as a list and comes back a ``deque``. So
adding state to a controller is one more line in its mapping, provided the new value is plain
data or a Struct.

Snapshots outlive the code that wrote them. Every field is optional on decoding: a snapshot
written before a field existed restores with that attribute as the freshly built object has it,
and a field a newer snapshot has but this code no longer knows is ignored. A snapshot of another
kind of object (another ``name``) is refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, get_args, get_origin

import msgspec

from .errors import InvalidInput

__all__ = ["StateCodec"]


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
        self._deques: set[str] = set()
        spec: list[tuple[str, Any, Any]] = []
        for path, tp in fields.items():
            key = path.replace(".", "__")
            self._paths[key] = path.split(".")
            if get_origin(tp) is deque:
                self._deques.add(key)
                tp = list[get_args(tp)] if get_args(tp) else list  # type: ignore[misc]
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
            if key in self._deques:
                value = list(value)
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
            if key in self._deques:
                value = deque(value)
            _set(obj, path, value)


def _get(obj: object, path: list[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _set(obj: object, path: list[str], value: Any) -> None:
    for part in path[:-1]:
        obj = getattr(obj, part)
    setattr(obj, path[-1], value)
