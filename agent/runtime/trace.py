"""Trace files (JSON Lines, optionally gzip): the recorder writes them, replay reads them.

Line 1 is a header ``{"vigil_trace": 1, "created": t, "host": ..., "source": ...}``; every
other line is one sample ``{"t": ..., "sensor": ..., **fields}`` (ARCHITECTURE.md, Samples
and traces).
"""

from __future__ import annotations

import gzip
import heapq
import io
import json
import logging
import sys
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.config import Config, known_zone
from agent.errors import TraceError
from agent.gate import Rejected, SampleGate, check_sample, describe
from agent.jsonfast import loads_object
from agent.platform import local_zone_name
from agent.samples import Sample

logger = logging.getLogger(__name__)

TRACE_VERSION = 1
#: Rejected lines logged one by one per reason; past this they are only counted.
LOGGED_PER_REASON = 20
#: Characters in one line, newline included. A real sample is at most tens of KB (the gate's
#: field and string limits; in practice a few hundred bytes); parsing a 1 MiB line takes tens
#: of MB at worst, where an unbounded one took gigabytes. A longer line is rejected unread.
MAX_LINE = 1 << 20
#: Whitespace JSON allows between tokens; a line of only these is blank, and skipped.
_JSON_SPACE = " \t\r\n"
#: A file that cannot be read on: an I/O error, gzip data cut short or damaged.
_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, zlib.error)


def _open_text(path: Path, mode: str) -> IO[str]:
    # Reading, a byte that is not UTF-8 must spoil its own line, not the file: it is kept as
    # a lone surrogate ("surrogateescape") and the line is rejected (``_parse_line``).
    errors = "surrogateescape" if mode == "r" else "strict"
    if path.suffix == ".gz":
        raw = gzip.GzipFile(path, mode + "b")
        return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, newline="\n")
    return open(path, mode, encoding="utf-8", errors=errors, newline="\n")  # noqa: SIM115


def new_recording_path(path: Path) -> Path:
    """``path``, or where it exists ``day.1.jsonl.gz``, ``day.2.jsonl.gz``...: a recording is
    never overwritten (a daemon restarted with ``--record day.jsonl.gz`` would otherwise wipe
    the day it had recorded). ``vigil replay day*.jsonl.gz`` merges them by sample time."""
    if not path.is_file():  # none yet, or a pipe or a device: written as named
        return path
    name = path.name
    ext = next((e for e in (".jsonl.gz", ".jsonl") if name.endswith(e)), path.suffix)
    stem = name[: len(name) - len(ext)] if ext else name
    n = 1
    while (candidate := path.with_name(f"{stem}.{n}{ext}")).exists():
        n += 1
    return candidate


class TraceWriter:
    """Appends samples to a new trace file, flushing after each tick so a crash tears at
    most the last line."""

    def __init__(
        self, path: Path, *, created: float, host: str, source: str, timezone: str | None = None
    ) -> None:
        """``timezone``: the recording machine's zone, if known (a replay elsewhere judges
        the hours in it: ``trace_zone``)."""
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open_text(path, "w")
        header: dict[str, object] = {
            "vigil_trace": TRACE_VERSION,
            "created": created,
            "host": host,
            "source": source,
        }
        if timezone is not None:
            header["timezone"] = timezone
        self._file.write(json.dumps(header) + "\n")
        self._file.flush()

    def write(self, sample: Sample) -> None:
        self._file.write(sample.to_json() + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ReadCounts:
    """What a reading of traces accepted, rejected and warned about, per reason."""

    read: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [f"{self.read} samples read"]
        if self.rejected:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.rejected.items()))
            parts.append(f"{sum(self.rejected.values())} rejected ({detail})")
        if self.warnings:
            detail = ", ".join(f"{k} {v}" for k, v in sorted(self.warnings.items()))
            parts.append(f"{sum(self.warnings.values())} warnings ({detail})")
        return "; ".join(parts)


class _NonFinite(ValueError):
    """``NaN`` or ``Infinity`` in a line: JSON has no such numbers."""


class _OutOfRange(ValueError):
    """An integer too long for Python to convert, let alone for a float to hold."""


def _reject_constant(name: str) -> Any:
    raise _NonFinite(f"non-finite number {name}")


def _parse_int(digits: str) -> int:
    # Python's own default cap on digits, kept even where a program lifts it: converting
    # longer integers takes quadratic time, and a float holds none of them.
    if len(digits) > sys.int_info.default_max_str_digits:
        raise _OutOfRange(f"an integer of {len(digits)} digits")
    return int(digits)


def _loads(line: str) -> Any:
    """One line parsed; ``ValueError`` (or its subclasses above) for anything but JSON."""
    try:
        return json.loads(line, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:  # a sample is flat; the decoder recurses once per nesting level
        raise ValueError("nested too deeply") from None


def _lines(f: IO[str]) -> Iterator[tuple[str | None, int]]:
    """Each line of ``f`` with its length; ``None`` for a line longer than ``MAX_LINE``, whose
    rest is skipped in pieces so that it is never held whole."""
    while line := f.readline(MAX_LINE):
        if len(line) < MAX_LINE or line.endswith("\n"):
            yield line, len(line)
            continue
        size = len(line)
        while piece := f.readline(MAX_LINE):
            size += len(piece)
            if piece.endswith("\n"):
                break
        yield None, size


def read_header(path: Path) -> dict[str, Any]:
    """The header of ``path``, or ``TraceError`` when the file is not a vigil trace."""
    if path.is_dir():
        raise _with_import_hint(TraceError(str(path), "a folder, not a trace"), path)
    try:
        with _open_text(path, "r") as f:
            first = next(_lines(f), ("", 0))[0]
    except FileNotFoundError:
        raise TraceError(str(path), "no such file") from None
    except _READ_ERRORS as exc:
        raise TraceError(str(path), f"cannot be read: {exc}") from exc
    if first is None:
        raise TraceError(str(path), f"not a vigil trace (line 1 is over {MAX_LINE} characters)")
    if not first:
        raise TraceError(str(path), "empty (a trace begins with its vigil_trace header line)")
    try:
        return _parse_header(path, first)
    except TraceError as exc:
        raise _with_import_hint(exc, path) from None


def _with_import_hint(exc: TraceError, path: Path) -> TraceError:
    """``exc``, told how to make a trace of ``path`` if it is a recording vigil imports."""
    from agent.importers.sniff import import_hint  # the importers only on this path

    hint = import_hint(path)
    return exc if hint is None else TraceError(exc.path, f"{exc.reason}; {hint}")


def _parse_header(path: Path, line: str) -> dict[str, Any]:
    try:
        line.encode("utf-8")  # a byte that is not UTF-8 (see ``_open_text``)
        header = _loads(line)
    except (ValueError, UnicodeEncodeError):
        header = None
    if not isinstance(header, dict) or "vigil_trace" not in header:
        raise TraceError(str(path), "not a vigil trace (line 1 is not a vigil_trace header)")
    version = header["vigil_trace"]
    # Exactly the integer: ``True == 1.0 == 1`` in Python, but neither is a version.
    if type(version) is not int or version != TRACE_VERSION:
        raise TraceError(str(path), f"trace version {describe(version)} is not supported")
    return header


def recording_zone(config: Config) -> str | None:
    """The zone a trace recorded with ``config`` names: the configured one, or this
    machine's (None when it cannot be told)."""
    zone = config.anomaly.timezone
    return local_zone_name() if zone == "local" else zone


def trace_zone(paths: Sequence[Path]) -> str | None:
    """The time zone the traces were recorded in, when their headers name one and the same
    usable zone; else None (logged when they disagree or name one this machine lacks)."""
    zones = {read_header(path).get("timezone") for path in paths} - {None}
    if len(zones) != 1:
        if zones:
            logger.warning(
                "the traces were recorded in different time zones %s", sorted(map(str, zones))
            )
        return None
    zone = zones.pop()
    if not known_zone(str(zone)):
        logger.warning("the traces' time zone %s is not known here", describe(zone))
        return None
    return str(zone)


def check_traces(paths: Sequence[Path]) -> None:
    """``TraceError`` unless every file is a readable trace, each given once: merged by time,
    a file given twice (by any name) would give every sample twice."""
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        read_header(path)
        try:
            stat = path.stat()
        except OSError as exc:
            raise TraceError(str(path), f"cannot be read: {exc}") from exc
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            raise TraceError(str(path), f"is given twice (also as {seen[key]})")
        seen[key] = path


#: One checked sample on its way to the merge: ordered by time, then file, then line.
_Item = tuple[float, int, int, Sample]


def read_trace(
    paths: list[Path],
    counts: ReadCounts,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Sample]:
    """Checked samples from ``paths``, merged by time, one gate across all files.

    Each file is read in its own order and the files are merged by sample time (equal times:
    file order, then line order), so the files may be given in any order and may overlap.
    A malformed line is logged with file:line and reason, counted in ``counts`` and skipped;
    a torn last line (no newline, not parseable: a crash while writing) is skipped with one
    warning, as is the rest of a file cut short or corrupt. ``on_progress`` gets the number
    of characters consumed since its last call.
    """
    check_traces(paths)  # every file, before yielding anything
    gate = SampleGate()
    files = [_read_one(path, index, counts, on_progress) for index, path in enumerate(paths)]
    for _, index, lineno, sample in heapq.merge(*files):
        try:
            sample = gate.in_order(sample)
        except Rejected as exc:
            _reject(paths[index], lineno, counts, exc.reason, exc.detail)
            continue
        counts.read += 1
        yield sample


def _read_one(
    path: Path,
    index: int,
    counts: ReadCounts,
    on_progress: Callable[[int], None] | None,
) -> Iterator[_Item]:
    try:
        f = _open_text(path, "r")
    except OSError as exc:  # it was there a moment ago, when its header was read
        raise TraceError(str(path), f"cannot be read: {exc}") from exc
    with f:
        lineno = 0
        pending = 0
        try:
            for line, size in _lines(f):
                lineno += 1
                pending += size
                if on_progress is not None and pending >= 1 << 16:
                    on_progress(pending)
                    pending = 0
                if lineno == 1:
                    continue  # the header, already checked
                if line is None:
                    detail = f"line is over {MAX_LINE} characters"
                    _reject(path, lineno, counts, "too_large", detail)
                    continue
                sample = _parse_line(path, lineno, line, counts)
                if sample is not None:
                    yield sample.t, index, lineno, sample
        except _READ_ERRORS as exc:
            # A gzip stream cut short by a crash, or damaged: keep what was read, say so once.
            reason = "truncated_file" if isinstance(exc, EOFError) else "corrupt_file"
            counts.warnings[reason] += 1
            logger.warning(
                "%s: cannot read past line %d, the rest of the file is skipped (%s)",
                path,
                lineno,
                exc,
            )
        if on_progress is not None and pending:
            on_progress(pending)


def _parse_line(path: Path, lineno: int, line: str, counts: ReadCounts) -> Sample | None:
    obj = loads_object(line)  # orjson, where it reads the line as the standard library would
    if obj is not None:
        try:
            return check_sample(obj.get("sensor"), obj.get("t"), obj)
        except Rejected as exc:
            return _reject(path, lineno, counts, exc.reason, exc.detail)
    if not line.strip(_JSON_SPACE):
        return None
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            return _reject(path, lineno, counts, "bad_utf8", f"a byte that is not UTF-8: {exc}")
    try:
        obj = _loads(line)
    except _NonFinite as exc:
        return _reject(path, lineno, counts, "non_finite", str(exc))
    except _OutOfRange as exc:
        return _reject(path, lineno, counts, "out_of_range", str(exc))
    except ValueError as exc:
        if not line.endswith("\n"):
            counts.warnings["torn_last_line"] += 1
            logger.warning("%s:%d: torn last line skipped (writer stopped mid-line)", path, lineno)
            return None
        return _reject(path, lineno, counts, "bad_json", str(exc))
    if not isinstance(obj, dict):
        return _reject(path, lineno, counts, "bad_json", "a line must be a JSON object")
    try:
        return check_sample(obj.get("sensor"), obj.get("t"), obj)
    except Rejected as exc:
        return _reject(path, lineno, counts, exc.reason, exc.detail)


def _reject(path: Path, lineno: int, counts: ReadCounts, reason: str, detail: str) -> Sample | None:
    counts.rejected[reason] += 1
    seen = counts.rejected[reason]
    if seen <= LOGGED_PER_REASON:
        logger.warning("%s:%d: rejected (%s): %s", path, lineno, reason, detail)
        if seen == LOGGED_PER_REASON:
            logger.warning("further %s rejections are counted, not logged", reason)
    else:
        logger.debug("%s:%d: rejected (%s): %s", path, lineno, reason, detail)
    return None
