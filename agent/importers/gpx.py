"""GPX 1.0/1.1 files -> location samples, one per timed track point (importer).

Track points without ``<time>`` cannot be placed in time: counted as ``untimed`` and left
out; waypoints and route points are not a recording of where someone was (``waypoint``,
``route_point``). ``<ele>`` becomes ``alt_m``; GPX 1.0 ``<speed>`` (m/s) and ``<course>``
are kept. A point with ``<hdop>`` gets the NMEA importer's HDOP model; otherwise the default
accuracy. Times without an offset are UTC, as the GPX schema says; a time whose offset is
impossible (``+99:00``) is skipped as ``bad_time``. A file nesting elements more than
``MAX_DEPTH`` deep is refused before gpxpy reads it (``_prescan``). gpxpy holds a whole file in
memory: a GPX file's size, not the import's, bounds what this reader holds.
"""

from __future__ import annotations

import logging
import re
import xml.parsers.expat
from collections.abc import Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    hdop_accuracy_m,
    location_fields,
    open_source,
)
from agent.samples import Sample

if TYPE_CHECKING:
    import gpxpy.gpx

logger = logging.getLogger(__name__)

_GPX_ROOT = re.compile(r"<(?:\w+:)?gpx[\s>/]")
#: Elements nested deeper than this refuse the file. GPX itself nests four deep
#: (``gpx/trk/trkseg/trkpt``) and extensions add a few levels (Garmin's
#: ``extensions/TrackPointExtension/hr`` is seven deep): 100 leaves room for any real file and
#: stays far below where any recursive step (gpxpy's copies, Python's recursion limit) fails.
MAX_DEPTH = 100
#: Characters handed to the scan at once: an error stops it within this much of the file.
_SCAN_CHARS = 1 << 16
#: Where a track point sits, below the root; the names gpxpy looks for (no prefix).
_TRACK_POINT = ["trk", "trkseg", "trkpt"]


def read_gpx(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """One ``location`` sample per timed ``<trkpt>`` of every file."""
    import gpxpy  # here, not at the top: every vigil command imports the registry
    import gpxpy.gpx

    for path in paths:
        with open_source(path, on_progress) as f:
            text = f.read()
        lines = _prescan(path, text)
        try:
            gpx = gpxpy.parse(text)
        except gpxpy.gpx.GPXException as exc:
            raise TraceError(str(path), f"not a GPX file: {exc}") from exc
        if not _GPX_ROOT.search(text, 0, 4096):
            raise TraceError(str(path), "not a GPX file: no <gpx> element at the start")
        del text  # gpxpy has it all now; the samples go on one by one
        if gpx.waypoints:
            counts.skipped["waypoint"] += len(gpx.waypoints)
        route_points = sum(len(r.points) for r in gpx.routes)
        if route_points:
            counts.skipped["route_point"] += route_points
        points = [p for track in gpx.tracks for segment in track.segments for p in segment.points]
        if len(lines) != len(points):  # gpxpy saw other points than the scan: no lines then
            lines = [0] * len(points)
        for point, line in zip(points, lines, strict=True):
            where = f"{path}:{line}" if line else str(path)
            sample = _sample(point, where, options.accuracy_m, counts)
            if sample is not None:
                yield where, sample


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def _prescan(path: Path, text: str) -> list[int]:
    """The line of every track point (``gpx/trk/trkseg/trkpt``), read with expat before
    gpxpy sees the file, and ``TraceError`` when the file is not XML or nests elements
    deeper than ``MAX_DEPTH``.

    Why: gpxpy copies ``<extensions>`` recursively, so 200,000 nested elements overflow the C
    stack and kill the process; expat reads elements without recursion, and this scan stops
    at the first element too deep, before anything recursive runs. Entities: expat (2.4 and
    later) refuses exponential expansion ("billion laughs") itself, and neither it nor
    ElementTree loads external entities, so a ``SYSTEM`` entity is refused as undefined.
    """
    parser = xml.parsers.expat.ParserCreate()
    names: list[str] = []
    lines: list[int] = []

    def start(name: str, attributes: object) -> None:
        names.append(name)
        if len(names) > MAX_DEPTH:
            raise _TooDeep(parser.CurrentLineNumber)
        if len(names) == len(_TRACK_POINT) + 1 and names[1:] == _TRACK_POINT:
            lines.append(parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: names.pop()
    try:
        for at in range(0, len(text), _SCAN_CHARS):
            parser.Parse(text[at : at + _SCAN_CHARS], False)
        parser.Parse("", True)
    except _TooDeep as exc:
        reason = f"line {exc.line}: elements nested more than {MAX_DEPTH} deep"
        raise TraceError(str(path), f"not a GPX file: {reason}") from None
    except xml.parsers.expat.ExpatError as exc:
        raise TraceError(str(path), f"not a GPX file: {exc}") from None
    return lines


def _sample(
    point: gpxpy.gpx.GPXTrackPoint,
    where: str,
    default_accuracy_m: float | None,
    counts: ImportCounts,
) -> Sample | None:
    if point.time is None:
        counts.skip("untimed", where, f"{point.latitude}, {point.longitude}")
        return None
    when = point.time if point.time.tzinfo is not None else point.time.replace(tzinfo=UTC)
    try:
        t = when.timestamp()
    except (ValueError, OverflowError) as exc:  # an offset of +99:00 (gpxpy takes any)
        counts.skip("bad_time", where, f"{point.time.replace(tzinfo=None)}: {exc}")
        return None
    accuracy: float | None = None
    if point.horizontal_dilution is not None and point.horizontal_dilution > 0:
        accuracy = hdop_accuracy_m(float(point.horizontal_dilution))
    else:
        counts.defaulted["no_accuracy"] += 1
        accuracy = default_accuracy_m
    fields = location_fields(
        point.latitude,
        point.longitude,
        accuracy,
        alt_m=point.elevation,
        speed_mps=point.speed,
        bearing_deg=point.course,
        provider="gps",
    )
    return Sample("location", t, fields)
