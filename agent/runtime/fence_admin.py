"""Editing the fences table (``vigil fences``): every fence is checked before it is stored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent.config import utf8_text
from agent.detect.fences import (
    MAX_FENCES_PER_FILE,
    MAX_VERTICES_PER_FILE,
    Fence,
    fence_to_feature,
    parse_fences,
)
from agent.errors import ConfigError
from agent.memory.fences import FenceStore
from agent.runtime.fence_watch import load_fences

#: 1,000,000 vertices (the most one file may hold) with full-precision coordinates are
#: 41 MB as compact JSON, 147 MB indented by 4; larger files are refused before they are read.
MAX_FILE_BYTES = 256 * 2**20


def read_fences_file(path: Path) -> list[Fence]:
    """The fences of a GeoJSON file, checked; ``ConfigError`` naming the file otherwise."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(str(path), "", f"larger than {MAX_FILE_BYTES // 2**20} MiB: split it")
    return parse_fences(
        utf8_text(data, str(path)),
        str(path),
        max_fences=MAX_FENCES_PER_FILE,
        max_vertices=MAX_VERTICES_PER_FILE,
    )


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
    (fence,) = parse_fences(feature, "fences add")  # errors name the fence
    return fence


def store_fences(store: FenceStore, fences: Sequence[Fence], *, replace_all: bool = False) -> int:
    """Add or replace ``fences`` by name (and drop every other one with ``replace_all``)."""
    return store.put([(f.name, fence_to_feature(f)) for f in fences], replace_all=replace_all)


def remove_fences(store: FenceStore, names: Sequence[str]) -> int:
    """Remove fences by name; ``ConfigError`` naming any that does not exist."""
    missing = set(names) - {f.name for f in load_fences(store)}
    if missing:
        raise ConfigError("fences", ", ".join(map(_shown, sorted(missing))), "no such fence")
    return store.remove(names)


def _shown(name: str) -> str:
    """A name for a message: quoted with escapes when it holds a control character or a lone
    surrogate (from a command line that was not UTF-8), which no terminal can take."""
    return name if name.isprintable() else repr(name)
