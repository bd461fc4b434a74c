"""Trace files (JSON Lines, optionally gzip): the recorder writes them, replay reads them.

Line 1 is a header ``{"vigil_trace": 1, "created": t, "host": ..., "source": ...}``; every
other line is one sample ``{"t": ..., "sensor": ..., **fields}`` (ARCHITECTURE.md, Samples
and traces).
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.errors import TraceError
from agent.gate import Rejected, SampleGate
from agent.samples import Sample

logger = logging.getLogger(__name__)

TRACE_VERSION = 1
#: Rejected lines logged one by one per reason; past this they are only counted.
LOGGED_PER_REASON = 20


def _open_text(path: Path, mode: str) -> IO[str]:
    # Reading, a byte that is not UTF-8 must spoil its own line, not the file: it is kept as
    # a lone surrogate ("surrogateescape") and the line is rejected (``_parse_line``).
    errors = "surrogateescape" if mode == "r" else "strict"
    if path.suffix == ".gz":
        raw = gzip.GzipFile(path, mode + "b")
        return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, newline="\n")
    return open(path, mode, encoding="utf-8", errors=errors, newline="\n")  # noqa: SIM115


class TraceWriter:
    """Appends samples to a new trace file, flushing after each tick so a crash tears at
    most the last line."""

    def __init__(self, path: Path, *, created: float, host: str, source: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _open_text(path, "w")
        header = {"vigil_trace": TRACE_VERSION, "created": created, "host": host, "source": source}
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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def read_header(path: Path) -> dict[str, Any]:
    """The header of ``path``, or ``TraceError`` when the file is not a vigil trace."""
    try:
        with _open_text(path, "r") as f:
            first = f.readline()
    except FileNotFoundError:
        raise TraceError(str(path), "no such file") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceError(str(path), f"cannot be read: {exc}") from exc
    return _parse_header(path, first)


def _parse_header(path: Path, line: str) -> dict[str, Any]:
    try:
        line.encode("utf-8")  # a byte that is not UTF-8 (see ``_open_text``)
        header = json.loads(line)
    except (ValueError, UnicodeEncodeError):
        header = None
    if not isinstance(header, dict) or "vigil_trace" not in header:
        raise TraceError(str(path), "not a vigil trace (line 1 is not a vigil_trace header)")
    if header["vigil_trace"] != TRACE_VERSION:
        raise TraceError(str(path), f"trace version {header['vigil_trace']!r} is not supported")
    return header


def read_trace(
    paths: list[Path],
    counts: ReadCounts,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Sample]:
    """Checked samples from ``paths`` in file order, one gate across all files.

    A malformed line is logged with file:line and reason, counted in ``counts`` and
    skipped; a torn last line (no newline, not parseable: a crash while writing) is skipped
    with one warning. ``on_progress`` gets the number of bytes consumed since its last call.
    """
    for path in paths:  # check every header before yielding anything
        read_header(path)
    gate = SampleGate()
    for path in paths:
        yield from _read_one(path, gate, counts, on_progress)


def _read_one(
    path: Path,
    gate: SampleGate,
    counts: ReadCounts,
    on_progress: Callable[[int], None] | None,
) -> Iterator[Sample]:
    with _open_text(path, "r") as f:
        try:
            f.readline()  # header, already checked
            lineno = 1
            pending = 0
            for line in f:
                lineno += 1
                pending += len(line)
                if on_progress is not None and pending >= 1 << 16:
                    on_progress(pending)
                    pending = 0
                sample = _parse_line(path, lineno, line, gate, counts)
                if sample is not None:
                    counts.read += 1
                    yield sample
            if on_progress is not None and pending:
                on_progress(pending)
        except (EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
            # A gzip stream cut short by a crash: keep what was read, say so once.
            counts.warnings["truncated_file"] += 1
            logger.warning("%s: file ends early after line %d (%s)", path, lineno, exc)


def _parse_line(
    path: Path, lineno: int, line: str, gate: SampleGate, counts: ReadCounts
) -> Sample | None:
    if not line.strip():
        return None
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            return _reject(path, lineno, counts, "bad_utf8", f"a byte that is not UTF-8: {exc}")
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except ValueError as exc:
        if not line.endswith("\n"):
            counts.warnings["torn_last_line"] += 1
            logger.warning("%s:%d: torn last line skipped (writer stopped mid-line)", path, lineno)
            return None
        reason, detail = (
            ("non_finite", str(exc)) if "non-finite" in str(exc) else ("bad_json", str(exc))
        )
        return _reject(path, lineno, counts, reason, detail)
    if not isinstance(obj, dict):
        return _reject(path, lineno, counts, "bad_json", "a line must be a JSON object")
    try:
        return gate.admit(obj.get("sensor"), obj.get("t"), obj)
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
