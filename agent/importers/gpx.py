"""GPX 1.0/1.1 files -> location samples, one per timed track point (importer).

Track points without ``<time>`` cannot be placed in time: counted as ``untimed`` and left
out; waypoints and route points are not a recording of where someone was (``waypoint``,
``route_point``). ``<ele>`` becomes ``alt_m``; GPX 1.0 ``<speed>`` (m/s) and ``<course>``
are kept. A point with ``<hdop>`` gets the NMEA importer's HDOP model; otherwise the default
accuracy. Times without an offset are UTC, as the GPX schema says.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
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


def read_gpx(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> list[Sample]:
    """One ``location`` sample per timed ``<trkpt>`` of every file."""
    import gpxpy  # here, not at the top: every vigil command imports the registry
    import gpxpy.gpx

    samples: list[Sample] = []
    for path in paths:
        with open_source(path, on_progress) as f:
            text = f.read()
        try:
            gpx = gpxpy.parse(text)
        except gpxpy.gpx.GPXException as exc:
            raise TraceError(str(path), f"not a GPX file: {exc}") from exc
        if not _GPX_ROOT.search(text, 0, 4096):
            raise TraceError(str(path), "not a GPX file: no <gpx> element at the start")
        if gpx.waypoints:
            counts.skipped["waypoint"] += len(gpx.waypoints)
        route_points = sum(len(r.points) for r in gpx.routes)
        if route_points:
            counts.skipped["route_point"] += route_points
        for track in gpx.tracks:
            for segment in track.segments:
                for point in segment.points:
                    sample = _sample(point, options.accuracy_m, counts)
                    if sample is None:
                        counts.skip("untimed", path, f"{point.latitude}, {point.longitude}")
                    else:
                        samples.append(sample)
    return samples


def _sample(
    point: gpxpy.gpx.GPXTrackPoint, default_accuracy_m: float | None, counts: ImportCounts
) -> Sample | None:
    if point.time is None:
        return None
    when = point.time if point.time.tzinfo is not None else point.time.replace(tzinfo=UTC)
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
    return Sample("location", when.timestamp(), fields)
