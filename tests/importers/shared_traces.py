"""Test helper for the importers: the shared data folder, replaying an imported trace, and
NMEA sentences with correct checksums."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from functools import reduce
from pathlib import Path

from _tools import shared

from agent.config import Config
from agent.importers import command
from agent.runtime.replay import replay_files
from agent.runtime.trace import ReadCounts, read_header, read_trace
from agent.samples import Sample


def traces(*parts: str) -> Path:
    return shared("traces", *parts)


def samples_of(trace: Path) -> list[Sample]:
    """The samples of an imported trace, read back through the trace reader (which rejects
    time going backward per sensor): none may be rejected."""
    counts = ReadCounts()
    samples = list(read_trace([trace], counts))
    assert not counts.rejected and not counts.warnings, counts.summary()
    return samples


def replays_clean(trace: Path) -> int:
    """Replay ``trace`` through the whole loop with the default config: zero rejections."""
    result = replay_files([trace], Config())
    assert not result.counts.rejected and not result.counts.warnings, result.counts.summary()
    return result.counts.read


def source_of(trace: Path) -> str:
    return str(read_header(trace)["source"])


def utc(t: float) -> str:
    """``2020-01-02T03:04:05.5`` (UTC, fractions only when present)."""
    return datetime.fromtimestamp(t, tz=UTC).replace(tzinfo=None).isoformat()


def nmea(body: str) -> str:
    """``$body*CS`` with the right checksum, and a newline."""
    checksum = reduce(lambda acc, ch: acc ^ ord(ch), body, 0)
    return f"${body}*{checksum:02X}\n"


def parse_import(*argv: str) -> argparse.Namespace:
    """``vigil import ...`` arguments parsed by a parser holding only the import command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="vigil", parents=[common])
    sub = parser.add_subparsers(dest="command", required=True)
    command.register(sub, common)
    return parser.parse_args(["import", *argv])
