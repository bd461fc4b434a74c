"""Published watts per busy CPU, for machines with no measured power source.

Without RAPL or a discharging battery, ``vigil power calibrate`` cannot measure k (watts per
busy core), so the report estimates energy as busy CPU seconds × a coefficient and shows the
band it may lie in. Cloud Carbon Footprint derives per-vCPU power from SPECpower_ssj2008
results: watts at idle (min) and at full load (max) for each microarchitecture. What one more
busy vCPU adds is max − min.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Coefficient:
    """A published figure ``value`` with the band ``low``..``high`` it comes from."""

    value: float
    low: float
    high: float
    unit: str
    source: str

    def band(self, amount: float) -> tuple[float, float, float]:
        """``amount`` × (low, value, high): e.g. busy CPU seconds -> joules."""
        return (amount * self.low, amount * self.value, amount * self.high)


#: Watts one busy vCPU adds. CCF's figures (min to max watts per vCPU,
#: packages/core/src/compute/ComputeProcessorTypes.ts and the AWS averages
#: MIN_WATTS_AVG/MAX_WATTS_AVG in packages/aws/src/domain/AwsFootprintEstimationConstants.ts):
#: AMD EPYC 2nd Gen 0.47-1.69 (low: 1.22), the AWS fleet average 0.74-3.5 (value: 2.76),
#: Haswell 1.0-4.74 (high: 3.74).
PUBLISHED_VCPU = Coefficient(
    value=2.76,
    low=1.22,
    high=3.74,
    unit="W per busy vCPU",
    source=(
        "Cloud Carbon Footprint's SPECpower-derived per-vCPU figures (min to max watts: "
        "AMD EPYC 2nd gen 0.47-1.69, fleet average 0.74-3.5, Haswell 1.0-4.74; "
        "the band is max-min)"
    ),
)
