"""Which foreign recording a file looks like, from its first lines: the hint when one is
given where a vigil trace is expected (``vigil replay walk.gpx``) or to another format's
import (``vigil import nmea walk.gpx``)."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from agent.errors import TraceError
from agent.importers import geolife, nab
from agent.importers.common import no_progress, open_source

#: How much of a file is read to tell (a bound: a file of one endless line is no recording).
HEAD_CHARS = 1 << 16
#: How many files of a folder are looked at, at most, to name its format (the hint of an error
#: message: ``vigil replay ~`` must not walk a home folder).
FOLDER_FILES = 10_000
#: How many of a file's first lines are read to tell (gpsd's logs begin with a dozen lines
#: of "#" comments), and how many of those that are not comments are looked at.
LINES = 100
BODY_LINES = 10

_NMEA = re.compile(r"^[$!][A-Z]{5},")  # "$GPGGA,...": a talker and a sentence type
_OWNTRACKS = re.compile(r"^\d{4}-\d\d-\d\dT\S+\t\S+\s*\t\{")  # time, topic, JSON
_DELIMITED = re.compile(r"^[A-Za-z_][\w .\"-]*([,;\t|])[A-Za-z_\"]")  # a header of names


def looks_like(lines: Iterable[str]) -> str | None:
    """The ``vigil import`` format that a file's first ``lines`` look like, or None. Lines
    of "#" comments are passed over. Any text gives an answer, never an error (no ``csv``
    here: a line past its field limit would raise)."""
    kept = (line.strip() for line in islice(lines, LINES) if not line.startswith("#"))
    body = list(islice((line for line in kept if line), BODY_LINES))
    if not body:
        return None
    if any("<gpx" in line for line in body):
        return "gpx"
    if body[0].startswith(geolife.FIRST_LINE):
        return "geolife"
    if any(_NMEA.match(line) for line in body):
        return "nmea"
    if _OWNTRACKS.match(body[0]):
        return "owntracks"
    if [cell.strip().strip('"') for cell in body[0].split(",")] == nab.HEADER:
        return "nab"
    if _DELIMITED.match(body[0]):
        return "csv"
    return None


def file_looks_like(path: Path) -> str | None:
    """``looks_like`` of the file's first ``HEAD_CHARS`` characters (gunzipped if ``.gz``),
    read as Latin-1 (any byte is a character: a logger's NMEA often begins with a serial
    line's garbage); None where it cannot be read."""
    try:
        with open_source(path, no_progress, encoding="latin-1") as f:
            head = f.read(HEAD_CHARS)
    except TraceError:
        return None
    return looks_like(head.splitlines(keepends=True))


def import_hint(path: Path, *, unless: str | None = None) -> str | None:
    """ "it looks like gpx: vigil import gpx walk.gpx -o trace.jsonl makes one", for a file
    or a folder of a format vigil imports (other than ``unless``), else None. The path as
    given, quoted for the shell."""
    kind = folder_looks_like(path) if path.is_dir() else file_looks_like(path)
    if kind is None or kind == unless:
        return None
    name = shlex.quote(str(path))
    return f"it looks like {kind}: vigil import {kind} {name} -o trace.jsonl makes one"


def folder_looks_like(path: Path) -> str | None:
    """The format of a folder's files (and those below it) where one format's suffix alone
    is there and its first file looks like it: a GeoLife user's .plt files, a logger's card
    of .nmea logs. A folder of mixed recordings, or of CSV files (a suffix of any table),
    gets none."""
    from agent.importers import IMPORTERS

    suffixes = {k: fmt.suffixes for k, fmt in IMPORTERS.items() if k not in ("csv", "nab")}
    found: dict[str, Path] = {}
    seen = 0
    for folder, _, names in os.walk(path):
        for name in sorted(names):
            seen += 1
            kind = next((k for k, ends in suffixes.items() if name.endswith(ends)), None)
            if kind is not None:
                found.setdefault(kind, Path(folder) / name)
            if len(found) > 1 or seen >= FOLDER_FILES:  # mixed, or too many to say
                return None
    if len(found) != 1:
        return None
    ((kind, first),) = found.items()
    return kind if file_looks_like(first) == kind else None
