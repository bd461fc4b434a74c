"""Editing the fences table (``vigil fences``): every fence is checked before it is stored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent.detect.fences import Fence, fence_to_feature, parse_fences
from agent.errors import ConfigError
from agent.memory.fences import FenceStore
from agent.runtime.fence_watch import load_fences


def read_fences_file(path: Path) -> list[Fence]:
    """The fences of a GeoJSON file, checked; ``ConfigError`` naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from exc
    return parse_fences(text, str(path))


def circle(
    name: str, lat: float, lon: float, radius_m: float, dwell_s: float | None = None
) -> Fence:
    """A checked circular fence."""
    properties: dict[str, object] = {"name": name, "radius_m": radius_m}
    if dwell_s is not None:
        properties["dwell_s"] = dwell_s
    feature = {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }
    (fence,) = parse_fences(feature, f"fence {name}")
    return fence


def store_fences(store: FenceStore, fences: Sequence[Fence], *, replace_all: bool = False) -> int:
    """Add or replace ``fences`` by name (and drop every other one with ``replace_all``)."""
    return store.put([(f.name, fence_to_feature(f)) for f in fences], replace_all=replace_all)


def remove_fences(store: FenceStore, names: Sequence[str]) -> int:
    """Remove fences by name; ``ConfigError`` naming any that does not exist."""
    missing = set(names) - {f.name for f in load_fences(store)}
    if missing:
        raise ConfigError("fences", ", ".join(sorted(missing)), "no such fence")
    return store.remove(names)
