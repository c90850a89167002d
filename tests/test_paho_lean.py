"""The cheaper MQTT 5 property set paho decodes with (SPEC §13's live load, R-NODROP).

``sim.live.paho_lean.LeanProperties`` keeps paho's lookup tables on the class instead of
building them for every packet. What a packet's properties decode to must not change: every
property set below is packed by paho and unpacked both by paho's own class and by the lean one,
and the two must hold the same attributes with the same values.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt import _packet
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

import sim.live.bus  # noqa: F401  (installs the lean class, as the live camera does)
from sim.live.paho_lean import LeanProperties, install

# (property name, a strategy of its values, packet types it applies to)
FIELDS: list[tuple[str, st.SearchStrategy[Any], tuple[int, ...]]] = [
    ("PayloadFormatIndicator", st.integers(0, 1), (PacketTypes.PUBLISH,)),
    ("MessageExpiryInterval", st.integers(0, 2**32 - 1), (PacketTypes.PUBLISH,)),
    ("ContentType", st.text(max_size=20), (PacketTypes.PUBLISH,)),
    ("ResponseTopic", st.text(min_size=1, max_size=20), (PacketTypes.PUBLISH,)),
    ("CorrelationData", st.binary(max_size=20), (PacketTypes.PUBLISH,)),
    ("SubscriptionIdentifier", st.lists(st.integers(1, 268435455), min_size=1, max_size=3),
     (PacketTypes.PUBLISH,)),
    ("TopicAlias", st.integers(1, 65535), (PacketTypes.PUBLISH,)),
    ("ReasonString", st.text(max_size=30), (PacketTypes.PUBACK, PacketTypes.SUBACK)),
    ("UserProperty", st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8)), min_size=1,
                              max_size=3), (PacketTypes.PUBLISH, PacketTypes.PUBACK, PacketTypes.SUBACK)),
]
PACKETS = (PacketTypes.PUBLISH, PacketTypes.PUBACK, PacketTypes.SUBACK)

pytestmark = [pytest.mark.req("R-NODROP")]


@st.composite
def property_sets(draw: st.DrawFn) -> tuple[int, dict[str, Any]]:
    packet = draw(st.sampled_from(PACKETS))
    chosen = {}
    for name, values, packets in FIELDS:
        if packet in packets and draw(st.booleans()):
            chosen[name] = draw(values)
    return packet, chosen


def _held(props: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(props).items() if k not in ("types", "names", "properties")}


def test_the_live_bus_makes_paho_decode_with_the_lean_class() -> None:
    """R-NODROP: the class is in place once the live bus is imported, and installing is idempotent."""
    decoder: Any = _packet
    assert decoder.Properties is LeanProperties
    assert install() is True
    assert decoder.Properties is LeanProperties


def _decode(props: Any, wire: bytes) -> tuple[Any, ...]:
    """What unpacking ``wire`` gives: the attributes and renderings, or the error paho raises."""
    try:
        decoded, length = props.unpack(wire)
    except MQTTException as exc:
        return ("refused", type(exc).__name__, str(exc))
    return ("decoded", length, _held(decoded), decoded.json(), str(decoded), decoded.isEmpty(),
            decoded.pack())


@given(property_sets())
def test_lean_properties_decode_every_property_set_as_paho_does(case: tuple[int, dict[str, Any]]) -> None:
    """R-NODROP: same attributes, values, JSON, text, re-encoding and refusals as paho's class."""
    packet, chosen = case
    sent: Any = Properties(packet)  # type: ignore[no-untyped-call]
    for name, value in chosen.items():
        setattr(sent, name, value)
    wire = sent.pack()
    stock = _decode(Properties(packet), wire)  # type: ignore[no-untyped-call]
    assert _decode(LeanProperties(packet), wire) == stock
    if stock[0] == "decoded":
        assert stock[1] == len(wire) and stock[-1] == wire and stock[-2] == (not chosen)


def test_a_reused_lean_set_forgets_what_it_held_and_keeps_paho_checks() -> None:
    """R-NODROP: ``unpack`` starts from nothing, and paho's own checks still refuse bad values."""
    first: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    first.ContentType = "application/json"
    first.UserProperty = ("k", "v")
    empty: Any = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    lean: Any = LeanProperties(PacketTypes.PUBLISH)
    lean.unpack(first.pack())
    assert lean.ContentType == "application/json"
    lean.unpack(empty.pack())
    assert _held(lean) == {"packetType": PacketTypes.PUBLISH}
    with pytest.raises(MQTTException):
        lean.TopicAlias = 0
    with pytest.raises(MQTTException):
        lean.ReasonString = "not on a PUBLISH"
