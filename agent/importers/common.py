"""What every importer shares: options, counts, reading sources, and the gate-sort-write step."""

from __future__ import annotations

import gzip
import io
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from agent.errors import ConfigError, TraceError
from agent.gate import Rejected, SampleGate
from agent.runtime.trace import LOGGED_PER_REASON, TraceWriter
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
        """Count one skipped record; the detail goes to the DEBUG log only."""
        self.skipped[reason] += 1
        logger.debug("%s: skipped (%s) %s", where, reason, detail)

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


Reader = Callable[[Sequence[Path], ImportOptions, ImportCounts, ProgressFn], list[Sample]]


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
    except (OSError, EOFError) as exc:
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


def finish(samples: Iterable[Sample], counts: ImportCounts) -> list[Sample]:
    """Sorted by time (stable: equal times keep source order), exact duplicates (same sensor,
    ``t`` and fields) dropped, every sample through the gate; ``counts`` updated."""
    gate = SampleGate()
    kept: list[Sample] = []
    timed: list[Sample] = []
    for sample in samples:
        if math.isfinite(sample.t):
            timed.append(sample)
        else:  # NaN cannot be sorted: the gate refuses it first
            _admit(gate, sample, counts, kept)
    seen: set[tuple[object, ...]] = set()
    for sample in sorted(timed, key=lambda s: s.t):
        key = (sample.sensor, sample.t, *sorted(sample.data.items()))
        if key in seen:
            counts.skip("duplicate", sample.sensor, f"t={sample.t!r}")
            continue
        seen.add(key)
        _admit(gate, sample, counts, kept)
    if kept:
        counts.first_t, counts.last_t = kept[0].t, kept[-1].t
    return kept


def _admit(gate: SampleGate, sample: Sample, counts: ImportCounts, kept: list[Sample]) -> None:
    try:
        kept.append(gate.admit(sample.sensor, sample.t, sample.data))
    except Rejected as exc:
        counts.rejected[exc.reason] += 1
        quiet = counts.rejected[exc.reason] > LOGGED_PER_REASON
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "%s sample at t=%r rejected (%s): %s",
            sample.sensor,
            sample.t,
            exc.reason,
            exc.detail,
        )


def write_trace(
    path: Path, samples: Sequence[Sample], counts: ImportCounts, *, kind: str, host: str
) -> None:
    """Write checked samples to a new trace. The header's ``created`` is the last sample's
    time (when the recording ends): an import reads no clock, and a plain ``.jsonl`` import
    repeats byte for byte on one host."""
    created = samples[-1].t if samples else 0.0
    with TraceWriter(path, created=created, host=host, source=f"vigil import {kind}") as writer:
        for sample in samples:
            writer.write(sample)
    counts.written = len(samples)
