"""The one door to a backend: what a wake's context and diagnosis may show a model.

Window titles never pass (none are gathered, and any ``title`` key is dropped on the way);
coordinates are snapped to a grid of ``location_precision_m``; process and app names are
replaced by stand-ins (``process-1``, ``app-1``) unless the config shares them. The stand-ins
are mapped back in the model's answer, which stays on this machine.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.config import EscalationConfig
from agent.escalation.context import Context
from agent.escalation.diagnosis import Diagnosis
from agent.numbers import is_number

_M_PER_DEG = 111_320.0
_COORDINATES = frozenset({"lat", "lon", "stay_lat", "stay_lon"})


@dataclass(frozen=True)
class Redacted:
    """What a backend sees: the facts (plain sentences), the context and diagnosis as JSON
    (for ``command`` backends), and the stand-ins, stand-in -> real name."""

    facts: tuple[str, ...]
    payload: dict[str, Any]
    stand_ins: dict[str, str]

    def restore(self, text: str) -> str:
        """The model's text with real names put back in place of the stand-ins."""
        for stand_in in sorted(self.stand_ins, key=len, reverse=True):
            text = re.sub(rf"\b{re.escape(stand_in)}\b", self.stand_ins[stand_in], text)
        return text


def redact(ctx: Context, diagnosis: Diagnosis, config: EscalationConfig) -> Redacted:
    names: dict[str, str] = {}  # real -> stand-in
    if not config.share_process_names:
        for proc in ctx.processes:
            names.setdefault(proc.name, f"process-{len(names) + 1}")
        for subject in _process_subjects(ctx):  # ``process.busy`` and the like name one
            names.setdefault(subject, f"process-{len(names) + 1}")
    if not config.share_app_names and ctx.focused_app is not None:
        names.setdefault(ctx.focused_app, "app-1")
    grid = config.location_precision_m
    payload = {
        "context": _clean(ctx.to_json(), names, grid),
        "diagnosis": _clean(
            {
                "cause": diagnosis.cause,
                "culprit": diagnosis.culprit,
                "culprit_kind": diagnosis.culprit_kind,
                "summary": diagnosis.summary,
                "advice": diagnosis.advice,
                "evidence": diagnosis.evidence(),
            },
            names,
            grid,
        ),
    }
    facts = tuple(_rename(f, names) for f in diagnosis.facts)
    payload["facts"] = list(facts)
    return Redacted(facts, payload, {v: k for k, v in names.items()})


def _process_subjects(ctx: Context) -> list[str]:
    """The processes the triggers and the recent events name as their subject."""
    said = [(t.get("event"), t.get("subject")) for t in ctx.triggers]
    said += [(e.get("kind"), e.get("subject")) for e in ctx.recent]
    return [str(subject) for kind, subject in said if str(kind).startswith("process.")]


def snap(lat: float, lon: float, grid_m: float) -> tuple[float, float]:
    """The centre of the ``grid_m`` cell a coordinate falls in (cells are ``grid_m`` high and
    about as wide at that latitude)."""
    step_lat = grid_m / _M_PER_DEG
    cell_lat = (math.floor(lat / step_lat) + 0.5) * step_lat
    step_lon = grid_m / (_M_PER_DEG * max(math.cos(math.radians(cell_lat)), 1e-6))
    cell_lon = (math.floor(lon / step_lon) + 0.5) * step_lon
    return round(cell_lat, 6), round(cell_lon, 6)


def _clean(value: Any, names: Mapping[str, str], grid: float) -> Any:
    if isinstance(value, Mapping):
        out = {k: _clean(v, names, grid) for k, v in value.items() if k != "title"}
        if "lat" in out and "lon" in out and _numbers(out["lat"], out["lon"]):
            out["lat"], out["lon"] = snap(float(out["lat"]), float(out["lon"]), grid)
        if "stay_lat" in out and "stay_lon" in out and _numbers(out["stay_lat"], out["stay_lon"]):
            out["stay_lat"], out["stay_lon"] = snap(
                float(out["stay_lat"]), float(out["stay_lon"]), grid
            )
        for key in _COORDINATES & out.keys():  # a coordinate without its pair: dropped
            if not isinstance(out[key], float):
                out.pop(key)
        return out
    if isinstance(value, list | tuple):
        return [_clean(v, names, grid) for v in value]
    if isinstance(value, str):
        return _rename(value, names)
    return value


def _numbers(*values: object) -> bool:
    return all(is_number(v) for v in values)


def _rename(text: str, names: Mapping[str, str]) -> str:
    for real in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(real)}(?![\w-])", names[real], text)
    return text
