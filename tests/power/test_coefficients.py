"""The published per-vCPU band: max − min of each of CCF's figures."""

from __future__ import annotations

import dataclasses

import pytest

from agent.power.coefficients import PUBLISHED_VCPU as C


def test_band_is_max_minus_min_of_the_cited_figures() -> None:
    assert C.low == pytest.approx(1.69 - 0.47)  # AMD EPYC 2nd Gen
    assert C.value == pytest.approx(3.5 - 0.74)  # the fleet average
    assert C.high == pytest.approx(4.74 - 1.0)  # Haswell
    assert C.low < C.value < C.high
    assert C.unit == "W per busy vCPU"
    assert C.source.startswith("Cloud Carbon Footprint")


def test_band_scales_and_is_frozen() -> None:
    assert C.band(100.0) == pytest.approx((122.0, 276.0, 374.0))  # 100 busy CPU s -> J
    with pytest.raises(dataclasses.FrozenInstanceError):
        C.value = 1.0  # type: ignore[misc]
