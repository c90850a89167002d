"""A cheaper MQTT 5 property set for the packets paho decodes (SPEC §13's live load).

paho's :class:`paho.mqtt.properties.Properties` builds its three lookup tables (27 property
names, their types, the packets each applies to) afresh in ``__init__``, and ``unpack`` begins
with ``clear()``, which tests every one of the 27 names with ``hasattr``. paho decodes a new
property set for every PUBLISH and every PUBACK it receives, so on a camera taking 1,000
messages a second these two methods were about a tenth of its CPU, although nearly every
packet carries no property at all.

:class:`LeanProperties` is the same class with the tables built once, on the class, and a
``clear`` that removes only the properties the instance holds. Everything else (setting,
reading, packing, ``json()``, ``str()``) is paho's own code, reading the same tables: a decoded
packet's properties are equal, attribute for attribute, to what paho alone produces
(``tests/test_paho_lean.py``).

:func:`install` points paho's packet decoder at it. It is called when :mod:`sim.live.bus` is
imported and changes nothing if this paho's decoder is laid out differently (paho 2.1 has no
``paho.mqtt._packet``): the stock class then stays in place.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.properties import Properties

_TEMPLATE: Any = Properties(0)  # type: ignore[no-untyped-call]  # paho's tables, built once
_PRIVATE = frozenset(("packetType", "types", "names", "properties"))


class LeanProperties(Properties):
    """paho's ``Properties`` with its lookup tables on the class, built once."""

    types: list[str] = _TEMPLATE.types
    names: dict[str, int] = _TEMPLATE.names
    properties: dict[int, tuple[int, list[int]]] = _TEMPLATE.properties

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def clear(self) -> None:
        for name in [n for n in vars(self) if n not in _PRIVATE]:
            delattr(self, name)


def install() -> bool:
    """Make paho's packet decoder build :class:`LeanProperties`; ``True`` if it now does."""
    try:
        from paho.mqtt import _packet
    except ImportError:
        return False
    decoder: Any = _packet
    if getattr(decoder, "Properties", None) is not Properties:
        return decoder.__dict__.get("Properties") is LeanProperties
    decoder.Properties = LeanProperties
    return True
