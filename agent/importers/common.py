"""What every importer shares: options, counts, reading sources, accuracies."""

from __future__ import annotations

import gzip
import io
import logging
import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from agent.errors import ConfigError, TraceError
from agent.runtime.trace import LOGGED_PER_REASON
from agent.samples import Sample, Scalar

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

logger = logging.getLogger(__name__)

#: Told how many more bytes of the sources have been read (compressed bytes for ``.gz``).
ProgressFn = Callable[[int], None]

#: gpsd's horizontal user equivalent range error, metres at 95 % confidence, without and with
#: differential corrections (gpsd ``libgpsd_core.c``, ``gpsd_error_model``: ``H_UERE_NO_DGPS``,
#: ``H_UERE_WITH_DGPS``). gpsd's ``eph`` is ``HDOP * H_UERE``; we use the same model so that an
#: imported NMEA log and a live gpsd fix of the same receiver get the same accuracy.
H_UERE_95_M = 15.0
H_UERE_95_DGPS_M = 3.75
#: For a circular normal error, the 68 % radius over the 95 % radius:
#: sqrt(-2 ln 0.32) / sqrt(-2 ln 0.05) = 1.5096 / 2.4477 = 0.6167. Android's accuracy (and
#: DESIGN's ``accuracy_m``) is the 68 % radius.
R68_PER_R95 = math.sqrt(math.log(0.32) / math.log(0.05))


def no_progress(n: int) -> None:
    """A ``ProgressFn`` that is told nothing: for a file's extra pass."""


def hdop_accuracy_m(hdop: float, *, differential: bool = False) -> float:
    """The 68 % horizontal radius for a fix with this HDOP: ``HDOP x 15 m x 0.6167`` (about
    9.25 m per unit of HDOP; 2.31 m with differential corrections)."""
    uere = H_UERE_95_DGPS_M if differential else H_UERE_95_M
    return hdop * uere * R68_PER_R95


@dataclass(frozen=True)
class ImportOptions:
    """Format options from the command line; each importer reads the ones it knows.

    ``accuracy_m`` is the 68 % radius given to fixes that carry none; ``None`` means the
    format's own default (``ImportFormat.default_accuracy_m``).
    """

    accuracy_m: float | None = None
    delimiter: str = ","
    time_column: str = "timestamp"
    lat_column: str = "lat"
    lon_column: str = "lon"
    accuracy_column: str = "accuracy_m"
    alt_column: str = "alt_m"
    #: ``auto``: the first of ``uid``, ``user_id``, ``userid``, ``user`` in the header, if any.
    user_column: str = "auto"
    user: str | None = None
    ignore_columns: tuple[str, ...] = ()
    #: A ``strptime`` format; ``None``: ISO 8601, or UNIX seconds (milliseconds if >= 1e11).
    time_format: str | None = None
    #: IANA zone for times written without an offset.
    timezone: str = "UTC"
    #: NAB: the metric stream's name (default: the file's stem).
    name: str | None = None

    def __post_init__(self) -> None:
        if self.accuracy_m is not None and not self.accuracy_m > 0:
            raise ConfigError("--accuracy-m", "", f"{self.accuracy_m!r} is not a positive radius")
        if len(self.delimiter) != 1:
            raise ConfigError("--delimiter", "", f"{self.delimiter!r} is not one character")


@dataclass
class ImportCounts:
    """What an import wrote, skipped and rejected, per reason.

    ``skipped``: records the format reader left out (no fix, bad checksum, untimed point, a
    different user...) and exact duplicates. ``rejected``: samples the gate refused.
    ``defaulted``: fixes read that took the default accuracy, by why (none given, 0, no HDOP).
    """

    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    defaulted: Counter[str] = field(default_factory=Counter)
    first_t: float | None = None
    last_t: float | None = None

    def skip(self, reason: str, where: object = "", detail: str = "") -> None:
        """Count one skipped record and log it with its place. Damaged records (``bad_*``:
        a time, number, line or sentence that does not parse) are warnings, the first
        ``LOGGED_PER_REASON`` of each reason; records a format leaves out by design (no fix,
        a waypoint, another user...) are logged at DEBUG only."""
        self.skipped[reason] += 1
        loud = reason.startswith("bad_") and self.skipped[reason] <= LOGGED_PER_REASON
        shown = detail if len(detail) <= 200 else detail[:200] + "..."
        logger.log(
            logging.WARNING if loud else logging.DEBUG, "%s: skipped (%s) %s", where, reason, shown
        )

    def summary(self) -> str:
        parts = [f"{self.written} samples written"]
        for label, counter in (("skipped", self.skipped), ("rejected", self.rejected)):
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
            parts.append(f"{sum(counter.values())} {label}" + (f" ({detail})" if detail else ""))
        if self.defaulted:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.defaulted.items()))
            parts.append(
                f"{sum(self.defaulted.values())} fixes took the default accuracy ({detail})"
            )
        if self.first_t is not None and self.last_t is not None:
            parts.append(f"{iso(self.first_t)} .. {iso(self.last_t)}")
        return "; ".join(parts)


class QuietCounts(ImportCounts):
    """Counts of a file's extra pass (CSV's scan of its columns, NMEA's look for the first
    date): nothing logged, since the main pass logs every record."""

    def skip(self, reason: str, where: object = "", detail: str = "") -> None:
        self.skipped[reason] += 1


#: ``(file:line, sample)``: what a reader yields, in source order.
Located = tuple[str, Sample]
#: An importer's reader: located samples of every file, in file order; lazily, so that an
#: import holds no more than the sort's chunk (``sorting.py``).
Reader = Callable[[Sequence[Path], ImportOptions, ImportCounts, ProgressFn], Iterable[Located]]


@dataclass(frozen=True)
class ImportFormat:
    """One importer in the registry: how it reads, which files a folder holds for it, and
    the accuracy (68 % radius, metres) its fixes take when they carry none."""

    read: Reader
    suffixes: tuple[str, ...]
    default_accuracy_m: float | None
    help: str


def iso(t: float) -> str:
    """``t`` as ``2026-01-02T03:04:05Z`` (fractions kept when present)."""
    text = datetime.fromtimestamp(t, tz=UTC).isoformat()
    return text.replace("+00:00", "Z")


def accuracy_or_default(
    value: float | None, default: float | None, counts: ImportCounts
) -> float | None:
    """``value`` when it is a real radius; otherwise the default, counted. A 0 means "not
    known": Android's ``Location.getAccuracy()`` returns 0.0 when ``hasAccuracy()`` is false."""
    if value is None or value == 0:
        counts.defaulted["no_accuracy" if value is None else "zero_accuracy"] += 1
        return default
    return value


def expand(paths: Sequence[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Files to read: each file as given, each folder's matching files (recursively, sorted).
    A missing path or a folder with nothing to import is a ``TraceError``."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))
            if not found:
                raise TraceError(str(path), f"a folder with no {'/'.join(suffixes)} files")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise TraceError(str(path), "no such file")
    return files


class _CountingReader(io.RawIOBase):
    """Reports the bytes read from the file underneath (before any decompression)."""

    def __init__(self, raw: io.BufferedReader, on_progress: ProgressFn) -> None:
        self._raw, self._on_progress = raw, on_progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._on_progress(n)
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_source(
    path: Path, on_progress: ProgressFn, *, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[str]]:
    """``path`` as text (gunzipped when it ends in ``.gz``), reporting progress in bytes.
    Read errors inside the ``with`` block become ``TraceError`` naming the file."""
    try:
        with io.BufferedReader(_CountingReader(open(path, "rb"), on_progress)) as raw:
            text: IO[str]
            if path.suffix == ".gz":
                unzipped = gzip.GzipFile(fileobj=raw, mode="rb")
                text = io.TextIOWrapper(unzipped, encoding, newline=newline)
            else:
                text = io.TextIOWrapper(raw, encoding, newline=newline)
            with text:
                yield text
    except FileNotFoundError:
        raise TraceError(str(path), "no such file") from None
    except UnicodeDecodeError as exc:
        reason = f"not {encoding.removesuffix('-sig')} text: {exc.reason}"
        raise TraceError(str(path), reason) from exc
    except (OSError, EOFError, zlib.error) as exc:  # zlib.error: damaged gzip data
        raise TraceError(str(path), f"cannot be read: {exc}") from exc


def location_fields(
    lat: float,
    lon: float,
    accuracy_m: float | None,
    *,
    alt_m: float | None = None,
    speed_mps: float | None = None,
    bearing_deg: float | None = None,
    provider: str | None = None,
) -> dict[str, Scalar]:
    """A ``location`` sample's fields in one order for every importer; ``None`` left out."""
    fields: dict[str, Scalar] = {
        "lat": lat,
        "lon": lon,
        "accuracy_m": accuracy_m,
        "alt_m": alt_m,
        "speed_mps": speed_mps,
        "bearing_deg": bearing_deg,
        "provider": provider,
    }
    return {k: v for k, v in fields.items() if v is not None}


def parse_float(text: str) -> float | None:
    """A number from a text field, ``None`` if the field is empty; ``ValueError`` otherwise.
    ``nan`` and ``inf`` parse: the gate rejects them with their own reason."""
    text = text.strip()
    return float(text) if text else None


def finish(located: Iterable[Located], counts: ImportCounts) -> list[Sample]:
    """A reader's samples sorted by time, without exact duplicates, through the gate, as a
    list (``sorting.sorted_samples``): for callers that feed them on rather than write them."""
    from agent.importers.sorting import sorted_samples  # here: sorting imports this module

    return sorted_samples(located, counts)
