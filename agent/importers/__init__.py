"""Importers: foreign recordings (NMEA, GPX, GeoLife, OwnTracks, CSV, NAB) -> vigil traces.

``IMPORTERS`` maps each ``vigil import KIND`` to its reader; ``import_files`` runs one: read,
sort by time, drop exact duplicates, check every sample at the gate, write the trace. Readers
yield their samples lazily and the sort is external (``sorting.py``), so an import's memory
does not grow with its input.

Default accuracy (68 % radius) for fixes that carry none (``--accuracy-m`` overrides it):

* ``nmea`` 15 m: an epoch without HDOP (RMC only); with HDOP the gpsd error model is used
  (``common.hdop_accuracy_m``), and 15 m is that model at a middling HDOP of about 1.6.
* ``gpx`` 10 m: handheld receivers (Garmin's "< 10 m, 95 % typical"), rounded up for older
  receivers and tree cover.
* ``geolife`` 20 m: GPS loggers and GPS phones of 2007-2012 in Beijing's streets (urban
  canyons); the GeoLife user guide states no accuracy.
* ``owntracks`` and ``csv`` 15 m: only fixes without an accuracy, or with 0 ("not known").
* ``nab``: no fixes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from agent.importers.common import (
    ImportCounts,
    ImportFormat,
    ImportOptions,
    ProgressFn,
    expand,
    no_progress,
)
from agent.importers.csvfile import read_csv
from agent.importers.geolife import read_geolife
from agent.importers.gpx import read_gpx
from agent.importers.nab import read_nab
from agent.importers.nmea import read_nmea
from agent.importers.owntracks import read_owntracks
from agent.importers.sorting import CHUNK_SAMPLES, write_sorted

__all__ = ["IMPORTERS", "ImportCounts", "ImportFormat", "ImportOptions", "import_files"]

logger = logging.getLogger(__name__)

IMPORTERS: dict[str, ImportFormat] = {
    "nmea": ImportFormat(read_nmea, (".log", ".nmea"), 15.0, "NMEA 0183 logs: GGA/RMC fixes"),
    "gpx": ImportFormat(read_gpx, (".gpx",), 10.0, "GPX 1.0/1.1: timed track points"),
    "geolife": ImportFormat(read_geolife, (".plt",), 20.0, "GeoLife .plt trajectories"),
    "owntracks": ImportFormat(
        read_owntracks, (".rec",), 15.0, "OwnTracks Recorder .rec: location records"
    ),
    "csv": ImportFormat(
        read_csv,
        (".csv", ".csv.gz", ".txt", ".txt.gz"),
        15.0,
        "CSV with a header: fixes, and a metric stream per other numeric column",
    ),
    "nab": ImportFormat(
        read_nab, (".csv", ".csv.gz"), None, "NAB CSV (timestamp,value): one metric stream"
    ),
}


def import_files(
    kind: str,
    sources: Sequence[Path],
    output: Path,
    options: ImportOptions | None = None,
    *,
    host: str = "",
    on_progress: ProgressFn | None = None,
    chunk_size: int = CHUNK_SAMPLES,
) -> ImportCounts:
    """Import ``sources`` (files, or folders searched for the format's files) into the trace
    ``output``. ``TraceError`` when an input cannot be used at all; nothing is written then.
    ``on_progress`` is told the bytes read as the sources are read; ``chunk_size`` samples
    are sorted in memory at once (``sorting.py``)."""
    fmt = IMPORTERS[kind]
    options = options or ImportOptions()
    if options.accuracy_m is None:
        options = replace(options, accuracy_m=fmt.default_accuracy_m)
    files = expand(sources, fmt.suffixes)
    counts = ImportCounts()
    located = fmt.read(files, options, counts, on_progress or no_progress)
    write_sorted(located, output, counts, kind=kind, host=host, chunk_size=chunk_size)
    logger.debug("import %s: %s -> %s", kind, counts.summary(), output)
    return counts
