"""Camera parameters (SPEC §2).

Defaults are the spec's; a policy may override some and a scenario camera entry may override
any. All durations are seconds of simulated time; battery and storage are counted in seconds
of footage/buffering, so the arithmetic stays in one unit.
"""

from __future__ import annotations

import math

import msgspec


class CameraParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Physical and firmware parameters of one camera."""

    prebuffer_s: float = 30.0
    buffer_audio: bool = False
    boot_s: float = 5.0
    segment_max_s: float = 14400.0
    battery_s: float = 43200.0
    record_drain: float = 1.3
    charge_rate: float = 10.0
    low_battery_s: float = 1200.0
    storage_s: float = 36000.0
    upload_speed: float = 20.0

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):  # NaN passes every test below
                raise ValueError(f"{name} must be a finite number")
        if not 0 <= self.prebuffer_s <= 120:
            raise ValueError("prebuffer_s must be between 0 and 120")
        for name in ("boot_s", "low_battery_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in (
            "segment_max_s", "battery_s", "record_drain", "charge_rate", "storage_s",
            "upload_speed",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


PARAM_NAMES: frozenset[str] = frozenset(CameraParams.__struct_fields__)
