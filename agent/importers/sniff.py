"""Which foreign recording a file looks like, from its first lines: the hint when one is
given where a vigil trace is expected (``vigil replay walk.gpx``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice

from agent.importers import geolife, nab

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
