"""``vigil import FORMAT SRC... -o TRACE``: the subcommand's arguments and its one call."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from agent.errors import TraceError
from agent.importers import IMPORTERS, ImportOptions, import_files
from agent.importers.common import expand
from agent.importers.sniff import import_hint

logger = logging.getLogger(__name__)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Add ``import`` and one sub-subcommand per format (each with only its own options)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "sources",
        type=Path,
        nargs="+",
        metavar="SRC",
        help="files, or folders searched (recursively) for the format's files",
    )
    shared.add_argument(
        "-o", "--output", type=Path, required=True, metavar="TRACE", help=".jsonl or .jsonl.gz"
    )
    text = "turn a foreign recording into a trace (sorted by time, checked at the gate)"
    parser = subparsers.add_parser("import", help=text, description=text, parents=[common])
    formats = parser.add_subparsers(dest="kind", required=True, metavar="FORMAT")
    for kind, fmt in IMPORTERS.items():
        p = formats.add_parser(kind, help=fmt.help, description=fmt.help, parents=[common, shared])
        if fmt.default_accuracy_m is not None:
            p.add_argument(
                "--accuracy-m",
                type=float,
                metavar="M",
                help="accuracy (68%% radius, metres) of fixes that carry none "
                f"(default {fmt.default_accuracy_m:g})",
            )
    _csv_options(formats.choices["csv"])
    formats.choices["nab"].add_argument(
        "--name", help="the metric stream's name (default: the file's stem, e.g. nyc_taxi)"
    )


def _csv_options(p: argparse.ArgumentParser) -> None:
    d = ImportOptions()
    p.add_argument(
        "--delimiter", default=d.delimiter, help="one character; 'tab' or '\\t' for tabs"
    )
    for what, default in (
        ("time", d.time_column),
        ("lat", d.lat_column),
        ("lon", d.lon_column),
        ("accuracy", d.accuracy_column),
        ("alt", d.alt_column),
    ):
        p.add_argument(f"--{what}-column", default=default, metavar="NAME", help=f"({default})")
    p.add_argument(
        "--user-column",
        default=d.user_column,
        metavar="NAME",
        help="'auto' (uid, user_id, userid or user if present) or 'none'",
    )
    p.add_argument("--user", help="import only this user's rows (001 and 1 match)")
    p.add_argument(
        "--ignore-column",
        action="append",
        default=[],
        metavar="NAME",
        help="a numeric column not to import as a metric stream (repeatable)",
    )
    p.add_argument(
        "--time-format",
        metavar="STRPTIME",
        help="e.g. '%%d/%%m/%%Y %%H:%%M' (default: ISO 8601 or UNIX seconds)",
    )
    p.add_argument("--timezone", default=d.timezone, help="IANA zone of times without an offset")


def options_from(args: argparse.Namespace) -> ImportOptions:
    """The format options on ``args``; options a format does not have keep their defaults."""
    d = ImportOptions()
    delimiter = getattr(args, "delimiter", d.delimiter)
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    return ImportOptions(
        accuracy_m=getattr(args, "accuracy_m", None),
        delimiter=delimiter,
        time_column=getattr(args, "time_column", d.time_column),
        lat_column=getattr(args, "lat_column", d.lat_column),
        lon_column=getattr(args, "lon_column", d.lon_column),
        accuracy_column=getattr(args, "accuracy_column", d.accuracy_column),
        alt_column=getattr(args, "alt_column", d.alt_column),
        user_column=getattr(args, "user_column", d.user_column),
        user=getattr(args, "user", None),
        ignore_columns=tuple(getattr(args, "ignore_column", ())),
        time_format=getattr(args, "time_format", None),
        timezone=getattr(args, "timezone", d.timezone),
        name=getattr(args, "name", None),
    )


def run(args: argparse.Namespace) -> int:
    """Import, showing progress on a terminal; a one-line summary on stderr."""
    from agent.progress import byte_progress

    options = options_from(args)
    files = expand(args.sources, IMPORTERS[args.kind].suffixes)
    total = sum(p.stat().st_size for p in files)
    with byte_progress(f"import {args.kind}", total) as advance:
        try:
            counts = import_files(
                args.kind,
                files,
                args.output,
                options,
                host=socket.gethostname(),
                on_progress=advance,
            )
        except TraceError as exc:  # another format's file: say which import reads it
            hint = import_hint(Path(exc.path), unless=args.kind) if exc.path else None
            if hint is None:
                raise
            raise TraceError(exc.path, f"{exc.reason}; {hint}") from None
    # The summary is this command's result; cli.py alone may print(), so write to stderr.
    sys.stderr.write(f"import {args.kind}: {counts.summary()} -> {args.output}\n")
    return 0
