"""NMEA 0183 logs -> location samples, one per GGA/RMC epoch (importer).

An *epoch* is one UTC time of day carried by adjacent GGA and RMC sentences with a valid
fix (GGA quality > 0, RMC status ``A`` and mode not ``N``); its fields merge both:
position, ``alt_m`` and HDOP from GGA, speed (knots -> m/s) and course from RMC.

Dates come from RMC only, read from its fields (no GPS-week rollover correction, unlike
gpsd). An epoch without an RMC (a GGA-only epoch) takes the date of the nearest dated epoch
in the same file, the previous one if any, else the next one (so epochs before the first
RMC get its date carried backwards), on the day that puts it closest to that epoch
(a log crossing midnight stays in order). A file with no valid RMC at all gives no fixes:
each epoch is skipped as ``no_date``. A time already imported is skipped as
``repeated_time``: a receiver whose clock stepped back (humminbird-M37) repeats instants,
and one place per instant is all a fix can say. (Those instants, a float each, are the one
thing this reader holds that grows with its input; a first pass finds the first RMC's date,
so the epochs before it need not be held.)

Accuracy: ``HDOP x 15 m x 0.6167`` (gpsd's 95 % UERE scaled to a 68 % radius; see
``common.hdop_accuracy_m``), with gpsd's DGPS UERE (3.75 m) for GGA quality 2, 4 and 5.
Fixes without HDOP (RMC-only epochs) take the default accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.errors import TraceError
from agent.importers.common import (
    ImportCounts,
    ImportOptions,
    Located,
    ProgressFn,
    QuietCounts,
    hdop_accuracy_m,
    location_fields,
    no_progress,
    open_source,
)
from agent.samples import Sample, Scalar

logger = logging.getLogger(__name__)

KNOTS_TO_MPS = 1852.0 / 3600.0
#: GGA fix qualities with differential corrections: DGPS, RTK fixed, RTK float.
DIFFERENTIAL = frozenset({2, 4, 5})
_DAY_S = 86400.0


@dataclass
class _Epoch:
    tod_s: float  # seconds since midnight, UTC
    where: str  # file:line of its first sentence
    gga: Any = None
    rmc: Any = None
    date: date | None = None


def read_nmea(
    paths: Sequence[Path], options: ImportOptions, counts: ImportCounts, on_progress: ProgressFn
) -> Iterator[Located]:
    """One ``location`` sample per valid GGA/RMC epoch of every file."""
    seen: set[float] = set()
    for path in paths:
        first = _first_dated(path)
        with open_source(path, on_progress, encoding="latin-1") as lines:
            for epoch, t in _dated(_epochs(path, lines, counts), first, counts):
                if t in seen:
                    counts.skip("repeated_time", epoch.where, "an instant already imported")
                    continue
                seen.add(t)
                yield epoch.where, Sample("location", t, _fields(epoch, options.accuracy_m, counts))


def _sentences(
    path: Path, lines: Iterable[str], counts: ImportCounts, *, refuse_if_none: bool = True
) -> Iterator[tuple[str, str, Any]]:
    """Valid GGA and RMC sentences as (file:line, "gga" or "rmc", sentence); everything else
    counted. ``TraceError`` at the end when no line was NMEA (unless ``refuse_if_none`` is
    false)."""
    import pynmea2  # here, not at the top: every vigil command imports the registry

    parsed = 0
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            sentence = pynmea2.parse(text)
        except pynmea2.ChecksumError:
            counts.skip("bad_checksum", where, text)
            parsed += 1
            continue
        except pynmea2.SentenceTypeError:
            counts.skip("not_position", where, text[:6])
            parsed += 1
            continue
        except pynmea2.ParseError:
            counts.skip("not_nmea", where, text)
            continue
        parsed += 1
        slot = "gga" if isinstance(sentence, pynmea2.GGA) else "rmc"
        if not isinstance(sentence, pynmea2.GGA | pynmea2.RMC):
            counts.skip("not_position", where, text[:6])
        elif not _has_fix(slot, sentence):
            counts.skip("no_fix", where, text)
        else:
            yield where, slot, sentence
    if parsed == 0 and refuse_if_none:
        raise TraceError(str(path), "no NMEA sentences: not an NMEA log")


def _has_fix(slot: str, s: Any) -> bool:
    if slot == "gga":
        quality = _quality(s)
        return quality is not None and quality > 0
    return bool(_raw(s, "status") == "A" and _raw(s, "mode_indicator") != "N")


def _usable(
    where: str, slot: str, s: Any, counts: ImportCounts
) -> tuple[float, date | None] | None:
    """A fix sentence's time of day and (RMC) date, or ``None`` when they or its position do
    not parse (counted)."""
    tod = _time_of_day(_raw(s, "timestamp"))
    if tod is None or _position(s) is None:
        counts.skip("bad_sentence", where, "time or position does not parse")
        return None
    day = None
    if slot == "rmc":
        day = _date(_raw(s, "datestamp"))
        if day is None:
            counts.skip("bad_sentence", where, "RMC date does not parse")
            return None
    return tod, day


def _first_dated(path: Path) -> tuple[date, float] | None:
    """The date and time of day of the file's first usable RMC: the date carried backwards
    to the epochs before it. A pass of its own (stopping there) so that those epochs need not
    be held; only lines that mention RMC are parsed."""
    with open_source(path, no_progress, encoding="latin-1") as lines:
        rmc_lines = (line if "RMC" in line else "" for line in lines)  # keeps line numbers
        quiet = QuietCounts()
        for where, slot, s in _sentences(path, rmc_lines, quiet, refuse_if_none=False):
            usable = _usable(where, slot, s, quiet)
            if usable is not None and usable[1] is not None:
                return usable[1], usable[0]
    return None


def _epochs(path: Path, lines: Iterable[str], counts: ImportCounts) -> Iterator[_Epoch]:
    """The file's epochs in order, each once complete (when the next time of day begins)."""
    current: _Epoch | None = None
    for where, slot, s in _sentences(path, lines, counts):
        usable = _usable(where, slot, s, counts)
        if usable is None:
            continue
        tod, day = usable
        if current is None or current.tod_s != tod:
            if current is not None:
                yield current
            current = _Epoch(tod, where)
        elif getattr(current, slot) is not None:
            counts.skip("repeated_sentence", where, f"a second {slot.upper()} in one epoch")
            continue
        setattr(current, slot, s)
        if day is not None:
            current.date = day
    if current is not None:
        yield current


def _dated(
    epochs: Iterable[_Epoch], first: tuple[date, float] | None, counts: ImportCounts
) -> Iterator[tuple[_Epoch, float]]:
    """Each epoch with its UNIX time, in file order; ``first`` dates the epochs before the
    first dated one; without it, every epoch is counted as undatable."""
    if first is None:
        for epoch in epochs:
            counts.skip("no_date", epoch.where, "no RMC date in this file")
        return
    ref_day, ref_tod = first
    for epoch in epochs:
        if epoch.date is not None:
            ref_day, ref_tod = epoch.date, epoch.tod_s
            yield epoch, _unix(epoch.date, epoch.tod_s)
            continue
        ref_t = _unix(ref_day, ref_tod)
        candidates = (_unix(ref_day + timedelta(days=d), epoch.tod_s) for d in (-1, 0, 1))
        yield epoch, min(candidates, key=lambda t: abs(t - ref_t))


def _fields(
    epoch: _Epoch, default_accuracy_m: float | None, counts: ImportCounts
) -> dict[str, Scalar]:
    position = _position(epoch.gga if epoch.gga is not None else epoch.rmc)
    assert position is not None  # checked when the sentence joined the epoch
    alt_m = accuracy = knots = course = None
    if epoch.gga is not None:
        alt_m = _number(_raw(epoch.gga, "altitude"))
        hdop = _number(_raw(epoch.gga, "horizontal_dil"))
        if hdop is not None and hdop > 0:
            differential = _quality(epoch.gga) in DIFFERENTIAL
            accuracy = hdop_accuracy_m(hdop, differential=differential)
    if accuracy is None:
        counts.defaulted["no_hdop"] += 1
        accuracy = default_accuracy_m
    if epoch.rmc is not None:
        knots = _number(_raw(epoch.rmc, "spd_over_grnd"))
        course = _number(_raw(epoch.rmc, "true_course"))
    return location_fields(
        position[0],
        position[1],
        accuracy,
        alt_m=alt_m,
        speed_mps=None if knots is None else knots * KNOTS_TO_MPS,
        bearing_deg=course,
        provider="gps",
    )


def _raw(sentence: Any, name: str) -> str:
    """A field as sent (pynmea2's typed getters fall back to the raw text on bad input)."""
    index: int = type(sentence).name_to_idx[name]
    data: list[str] = sentence.data
    return data[index].strip() if index < len(data) else ""


def _quality(gga: Any) -> int | None:
    """GGA's fix quality (0 none, 1 GPS, 2 DGPS...), ``None`` unless a few ASCII digits
    (``int`` refuses thousands of them)."""
    text = _raw(gga, "gps_qual")
    return int(text) if _digits(text) and len(text) <= 9 else None


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also takes ``²`` (a Latin-1 byte), which ``int``
    refuses."""
    return text.isascii() and text.isdigit()


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _time_of_day(text: str) -> float | None:
    """``hhmmss[.sss]`` -> seconds since midnight (exactly as written, no float detour)."""
    if len(text) < 6 or not _digits(text[:6]):
        return None
    hh, mm, ss = int(text[:2]), int(text[2:4]), _number(text[4:])
    if ss is None or hh > 23 or mm > 59 or not 0 <= ss < 61:
        return None
    return hh * 3600 + mm * 60 + ss


def _date(text: str) -> date | None:
    """``ddmmyy``; years 80-99 are 1980-1999 (GPS began in 1980), 00-79 are 2000-2079."""
    if len(text) != 6 or not _digits(text):
        return None
    yy = int(text[4:])
    try:
        return date(1900 + yy if yy >= 80 else 2000 + yy, int(text[2:4]), int(text[:2]))
    except ValueError:
        return None


def _position(s: Any) -> tuple[float, float] | None:
    lat = _degrees(_raw(s, "lat"), _raw(s, "lat_dir"), "NS")
    lon = _degrees(_raw(s, "lon"), _raw(s, "lon_dir"), "EW")
    return None if lat is None or lon is None else (lat, lon)


def _degrees(text: str, hemisphere: str, signs: str) -> float | None:
    """``dddmm.mmmm`` and N/S/E/W -> signed degrees; ``None`` when empty or malformed."""
    head = text.partition(".")[0]
    minutes = _number(text[len(head) - 2 :]) if len(head) >= 3 and _digits(head) else None
    if minutes is None or minutes >= 60 or hemisphere not in signs:
        return None
    value = float(head[:-2]) + minutes / 60.0  # not int(): 400 digits overflow the sum
    return -value if hemisphere == signs[1] else value


def _unix(day: date, tod_s: float) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + tod_s
