"""Fence files that used to end in a traceback or take minutes: each is now one clear error
(exit 2 from ``vigil fences import``) that names the file, and the fence where there is one."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.detect.fence_index import FenceIndex
from agent.detect.fences import (
    MAX_FENCES_PER_FILE,
    MAX_VERTICES,
    MAX_VERTICES_PER_FILE,
    parse_fences,
)
from agent.errors import ConfigError
from agent.memory.db import open_engine, upgrade
from agent.runtime.fence_admin import MAX_FILE_BYTES, read_fences_file


def _ring(n: int, lat: float = 46.05, lon: float = 14.5, r: float = 0.01) -> list[list[float]]:
    """A closed ring of ``n`` positions around a circle: a valid polygon."""
    points = [
        [
            lon + r * math.cos(2 * math.pi * i / (n - 1)),
            lat + r * math.sin(2 * math.pi * i / (n - 1)),
        ]
        for i in range(n - 1)
    ]
    return [*points, points[0]]


def _polygon(name: Any, ring: list[Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {"name": name},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def _collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def _db(tmp_path: Path) -> list[str]:
    """``--db`` and a database with its schema, as ``vigil init`` makes one."""
    path = tmp_path / "v.db"
    engine = open_engine(path)
    upgrade(engine)
    engine.dispose()
    return ["--db", str(path)]


def _import(tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]) -> str:
    """``vigil fences import`` of ``content``: exit 2, nothing stored; the error line."""
    path = tmp_path / "fences.geojson"
    path.write_bytes(content)
    db = _db(tmp_path)
    assert main(["fences", "import", str(path), *db]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vigil: error: {path}: ") and "Traceback" not in err
    assert main(["fences", "list", *db]) == 0
    assert capsys.readouterr().out == ""
    return err


def test_non_utf8_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = json.dumps(_polygon("café", _ring(5)), ensure_ascii=False).encode("latin-1")
    err = _import(tmp_path, content, capsys)
    column = content.index(b"\xe9") + 1
    assert f"not UTF-8 text: byte e9 at line 1, column {column}" in err


def test_lone_surrogate_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _import(tmp_path, json.dumps(_polygon("\ud800", _ring(5))).encode(), capsys)
    assert "feature #1: properties.name '\\ud800' must be printable text" in err


def test_lone_surrogate_name_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A byte that is not UTF-8 in argv reaches Python as a lone surrogate."""
    db = _db(tmp_path)
    add = ["fences", "add", "\udcff", "--lat", "46", "--lon", "14", "--radius-m", "50", *db]
    assert main(add) == 2
    err = capsys.readouterr().err
    assert "fences add: feature #1: properties.name '\\udcff' must be printable" in err
    assert main(["fences", "remove", "\udcff", *db]) == 2
    assert "fences: '\\udcff': no such fence" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 100_000 + "]" * 100_000, "not valid GeoJSON: nested too deeply"),
        ('{"type": ' + "1" * 5000 + "}", "not valid JSON: Exceeds the limit (4300 digits)"),
        ("\ufeff{}", "not valid JSON: Unexpected UTF-8 BOM"),
    ],
)
def test_json_that_python_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, reason: str
) -> None:
    assert reason in _import(tmp_path, text.encode(), capsys)


def test_deep_nesting_inside_a_position(tmp_path: Path) -> None:
    nested: Any = [0]
    for _ in range(900):
        nested = [nested]
    doc = _collection(
        {
            "type": "Feature",
            "properties": {"name": "deep", "radius_m": 10},
            "geometry": {"type": "Point", "coordinates": [14.5, 46.0, nested]},
        }
    )
    path = tmp_path / "deep.geojson"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError) as caught:
        read_fences_file(path)
    assert caught.value.key == "deep"
    # Which check comes first depends on the stack's depth here; either is clear.
    assert caught.value.reason in ("nested too deeply to be GeoJSON", NOT_NUMBERS)


NOT_NUMBERS = (
    "Point: position [14.5, 46.0, " + "[" * 46 + "... (2713 characters) is not [lon, lat] numbers"
)


def test_non_finite_and_out_of_range_coordinates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ring = _ring(5)
    ring[1] = [math.nan, 46.0]
    err = _import(tmp_path, json.dumps(_polygon("nan", ring)).encode(), capsys)
    assert "nan: ring 1: position [nan, 46.0] is not finite" in err
    ring[1] = [14.5, 1e400]
    err = _import(tmp_path, json.dumps(_polygon("inf", ring)).encode(), capsys)
    assert "inf: ring 1: position [14.5, inf] is not finite" in err
    text = json.dumps(_polygon("big", _ring(5))).replace("14.51", "1" + "0" * 400, 1)
    err = _import(tmp_path, text.encode(), capsys)
    assert "big: ring 1: position [1000000000000000000000000000000" in err
    ring[1] = [14.5, 95.0]
    err = _import(tmp_path, json.dumps(_polygon("north", ring)).encode(), capsys)
    assert "north: ring 1: latitude 95.0 is out of range [-90, 90]" in err


def test_self_intersecting_polygon_says_why_and_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bow = [[14.50, 46.05], [14.51, 46.06], [14.51, 46.05], [14.50, 46.06], [14.50, 46.05]]
    err = _import(tmp_path, json.dumps(_polygon("bow", bow)).encode(), capsys)
    assert "bow: Polygon is not valid: Self-intersection near lat 46.055" in err


def test_absurd_radius_and_dwell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def circle(**props: Any) -> bytes:
        geometry = {"type": "Point", "coordinates": [14.5, 46.0]}
        feature = {"type": "Feature", "properties": {"name": "c", **props}, "geometry": geometry}
        return json.dumps(feature).encode()

    assert "c: properties.radius_m must be a number >= 1, got 0.001" in _import(
        tmp_path, circle(radius_m=0.001), capsys
    )
    assert "c: radius_m 1e+300 is 2e+297 km across; fences may be at most 50 km" in _import(
        tmp_path, circle(radius_m=1e300), capsys
    )
    assert "c: properties.dwell_s must be a number from 0 to 604,800 (a week)" in _import(
        tmp_path, circle(radius_m=10, dwell_s=1e12), capsys
    )


def test_the_vertex_limit_of_one_fence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fence,) = parse_fences(_polygon("edge", _ring(MAX_VERTICES)))  # the limit itself: fine
    assert FenceIndex([fence]).signed_distances(46.05, 14.5, 10.0)["edge"] < 0
    err = _import(tmp_path, json.dumps(_polygon("fine", _ring(MAX_VERTICES + 1))).encode(), capsys)
    assert "fine: has 10,001 vertices; at most 10,000 per fence: simplify it" in err
    holes = {"type": "Polygon", "coordinates": [_ring(5)] * (MAX_VERTICES // 5 + 1)}
    with pytest.raises(ConfigError, match=r"^<fences>: holes: has 10,005 vertices; at most"):
        parse_fences({"type": "Feature", "properties": {"name": "holes"}, "geometry": holes})


def test_the_limits_of_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Counted before any fence is read: positions need not even be valid.
    ring = [[0, 0]] * MAX_VERTICES
    many = [_polygon(f"f{i}", ring) for i in range(MAX_VERTICES_PER_FILE // MAX_VERTICES + 1)]
    err = _import(tmp_path, json.dumps(_collection(*many)).encode(), capsys)
    assert "1,010,000 vertices; at most 1,000,000 in one file: split it" in err
    stubs = json.dumps(_collection(*[{}] * (MAX_FENCES_PER_FILE + 1))).encode()
    assert "100,001 fences; at most 100,000 in one file: split it" in _import(
        tmp_path, stubs, capsys
    )


def test_a_file_too_large_to_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fences.geojson"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    assert main(["fences", "import", str(path), *_db(tmp_path)]) == 2
    assert f"{path}: larger than 256 MiB: split it" in capsys.readouterr().err
