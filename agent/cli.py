"""``vigil``: parse arguments, load the config, build objects, call one function. Results go
to stdout, logs and progress to stderr. Exit codes: 0 ok, 2 usage or a clear error, 1 a bug."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.clock import SystemClock, iso_utc
from agent.config import Config, default_config_path, default_db_path, load
from agent.config_template import TEMPLATE
from agent.errors import ConfigError, StorageError, VigilError
from agent.importers import command as import_command
from agent.log import setup_logging
from agent.samples import Event

if TYPE_CHECKING:
    from agent.escalation.backends import Backend
    from agent.memory.fences import FenceStore

logger = logging.getLogger("agent.cli")


def _common() -> argparse.ArgumentParser:
    """Global options, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")
    p.add_argument("--db", default=argparse.SUPPRESS, help="database path or sqlite:/// URL")
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    return p


#: ``--since`` of the commands that read the memory (``report power`` defaults to 24h).
SINCE_HELP = "24h, 30m, 7d... back from the newest sample, an ISO 8601 time, or all (default: all)"


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="vigil", description="An always-on sensing agent.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    p = add("init", "write a commented config and create or upgrade the database")
    rewrite = p.add_mutually_exclusive_group()
    rewrite.add_argument("--force", action="store_true", help="replace an existing config file")
    rewrite.add_argument(
        "--add-rules",
        action="store_true",
        help="append the default rules an existing config's [[rules]] list leaves out",
    )
    p = add("run", "run the daemon in the foreground until SIGTERM or Ctrl-C")
    p.add_argument("--record", type=Path, metavar="TRACE", help="also record samples to TRACE")
    p = add("record", "read the sensors for N seconds into a trace (no pipeline, no database)")
    p.add_argument("--seconds", type=float, required=True, metavar="N")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="TRACE")
    p = add("replay", "replay traces through the pipeline (a fresh temporary database by default)")
    p.add_argument("traces", type=Path, nargs="+", metavar="TRACE")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout")
    p.add_argument("--fences", type=Path, metavar="GEOJSON", help="use these fences alone")
    p.add_argument("--wake", action="store_true", help="also ask the larger model at each wake")
    p = add("score", "replay traces through the pipeline into a CSV of anomaly scores per sample")
    p.add_argument("traces", type=Path, nargs="+", metavar="TRACE")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="CSV")
    p = add("events", "list stored events")
    p.add_argument("--since", help=SINCE_HELP)
    p.add_argument("--kind", help="only this kind, e.g. rule.fired")
    p.add_argument("--json", action="store_true", help="JSON lines")
    p = add("findings", "what the wakes of the larger model found")
    p.add_argument("--since", help=SINCE_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = add("explain", "wake the larger model by hand on a stored event (ids: vigil events)")
    p.add_argument("event_id", type=int, metavar="EVENT_ID")
    p.add_argument("--backend", choices=["llama_cpp", "openai", "command", "none"])
    p.add_argument("--model", metavar="GGUF", help="a GGUF file for llama_cpp")
    p.add_argument("--json", action="store_true", help="the finding as one JSON object")
    p = add("db", "database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p = add("service", "install the background service for this platform")
    p.add_argument("action", choices=["install"])
    p.add_argument("--force", action="store_true", help="replace an existing service file")
    import_command.register(sub, common)
    p = add("fences", "list, add, remove or import geofences (the daemon picks changes up)")
    fences = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    f = fences.add_parser("list", help="the fences", parents=[common])
    f.add_argument("--json", action="store_true", help="a GeoJSON FeatureCollection")
    f = fences.add_parser("add", help="add or replace a circle", parents=[common])
    f.add_argument("name")
    f.add_argument("--lat", type=float, required=True)
    f.add_argument("--lon", type=float, required=True)
    f.add_argument("--radius-m", type=float, required=True)
    f.add_argument("--dwell-s", type=float, help="time inside before geofence.dwell")
    f = fences.add_parser("remove", help="remove fences by name", parents=[common])
    f.add_argument("names", nargs="+", metavar="NAME")
    f = fences.add_parser("import", help="add fences from a GeoJSON file", parents=[common])
    f.add_argument("file", type=Path, metavar="GEOJSON")
    f.add_argument("--replace", action="store_true", help="drop every fence not in the file")
    p = add("places", "learned places: where you stay, how often, how long")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = add("doctor", "which sensors, runtimes and energy sources work here, and why")
    p.add_argument("--json", action="store_true", help="the checks as one JSON array")
    p = add("report", "reports from the database")
    reports = p.add_subparsers(dest="report", required=True, metavar="REPORT")
    r = reports.add_parser(
        "power", help="what vigil cost and what the tiering saved", parents=[common]
    )
    r.add_argument(
        "--since",
        default="24h",
        help="24h, 7d... back from the newest record, an ISO 8601 time, or all (default: 24h)",
    )
    r.add_argument("--json", action="store_true", help="the report as JSON (schema in README)")
    r.add_argument("--csv", type=Path, metavar="FILE", help="also write hour x component rows")
    r.add_argument("--html", type=Path, metavar="FILE", help="also write a self-contained page")
    p = add("power", "energy accounting")
    power = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = power.add_parser(
        "calibrate",
        help="measure watts per busy core against this machine's energy source, and keep it",
        parents=[common],
    )
    c.add_argument("--pairs", type=int, default=10, help="busy/idle block pairs (default 10)")
    c.add_argument("--busy-s", type=float, default=20.0, help="seconds per busy block")
    c.add_argument("--idle-s", type=float, default=20.0, help="seconds per idle block")
    c.add_argument(
        "--powercap",
        default="/sys/class/powercap",
        metavar="DIR",
        help="where RAPL's counters are (default: /sys/class/powercap)",
    )
    p = add("demo", "replay a synthetic day through the full pipeline and print its events")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout")
    p.add_argument("--wake", action="store_true", help="also ask the larger model at each wake")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Everything vigil writes (database, traces, reports, config, spill files) is the user's
    # alone: files 0600, folders 0700, whatever the shell's umask.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if getattr(args, "quiet", False) else getattr(args, "verbose", 0))
    try:
        _check_outputs(args)
        code = int(COMMANDS[args.command](args))
        sys.stdout.flush()  # a pipe's reader gone shows here, not at exit (stdout is buffered)
        return code
    except VigilError as exc:
        print(f"vigil: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`vigil events | head`): stop quietly, as a pipe's writer
        # does, and let no flush at exit try again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug
            logger.exception("unexpected error (a bug: please report it with this traceback)")
            return 1
        print(f"vigil: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from sqlalchemy.exc import DatabaseError

        if isinstance(exc, DatabaseError):  # "file is not a database", a damaged page
            print(f"vigil: error: database: {exc.orig}", file=sys.stderr)
            return 2
        logger.exception("unexpected error (a bug: please report it with this traceback)")
        return 1


#: Options that name a file vigil writes.
_OUTPUTS = ("output", "record", "csv", "html")


def _check_outputs(args: argparse.Namespace) -> None:
    """A file to write goes into a folder that exists: a typo must not create folders (as
    root, anywhere), and an unwritable folder is said before any work is done."""
    for name in _OUTPUTS:
        path = getattr(args, name, None)
        if not isinstance(path, Path):
            continue
        folder = path.parent
        if not folder.is_dir():
            raise ConfigError(str(path), "", f"folder {folder} does not exist: create it first")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ConfigError(str(path), "", f"folder {folder} is not writable")
        if path.is_dir():
            raise ConfigError(str(path), "", "is a folder: name a file")


# -- helpers -----------------------------------------------------------------------------------
def _config_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "config", None) or default_config_path())


def _config(args: argparse.Namespace) -> Config:
    explicit = getattr(args, "config", None) is not None or "VIGIL_CONFIG" in os.environ
    return load(_config_path(args), missing_ok=not explicit)


def _db(args: argparse.Namespace, config: Config, *, use: str = "read") -> str:
    """The database to use, checked for how it is used, so a mistyped ``--db`` never quietly
    makes an empty database: ``read`` needs it to exist; ``run`` too, unless it is the
    default one (the first start creates it, its folder 0700); ``new`` may create the file
    in a folder that exists (``replay --db``); ``init`` creates what is missing; ``any``
    checks nothing (``doctor`` reports what it finds)."""
    named = getattr(args, "db", None) or os.environ.get("VIGIL_DB") or config.storage.path
    target = str(named or default_db_path())
    if use in ("any", "init") or ("://" in target and not target.startswith("sqlite:///")):
        return target  # open_engine says which backends it takes
    path = Path(target.removeprefix("sqlite:///")).expanduser()
    if path.exists() or (use == "run" and not named):
        return target
    if use == "new":
        if not path.parent.is_dir():
            raise StorageError(str(path), f"folder {path.parent} does not exist: create it first")
        return target
    raise StorageError(
        str(path), f"no such database (a mistyped --db? vigil init {_db_flag(named)}creates it)"
    )


def _db_flag(named: str | None) -> str:
    return f"--db {named} " if named else ""


def _event_printer(as_json: bool) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if as_json:
            print(event.to_json())
        else:
            data = json.dumps(dict(event.data), separators=(",", ":"), sort_keys=True)
            print(f"{iso_utc(event.t)}  {event.kind:<14} {event.subject:<16} {data}")

    return show


_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_window(text: str) -> float | None:
    """The seconds of ``24h``/``30m``/``7d``, or None for anything else."""
    match = _SINCE.match(text.strip())
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None


def since_start(
    text: str | None, newest: Callable[[], float | None], now: Callable[[], float]
) -> float | None:
    """Where ``--since`` starts: ``24h``/``7d``... back from the database's newest sample (the
    agent's own now, so a replay's database answers for its own day, and a stopped daemon's
    for its last one; ``now`` where it holds no sample), an ISO 8601 time, or everything."""
    if not text or text.strip() == "all":
        return None
    if since_window(text) is None:
        return parse_since(text, 0.0)
    end = newest()
    return parse_since(text, now() if end is None else end)


def parse_since(text: str, now: float) -> float:
    """``24h``/``30m``/``7d`` before ``now``, or an ISO 8601 time (UTC if no zone)."""
    match = _SINCE.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        reason = f"{text!r} is not like 24h, 30m, 7d or 2026-06-01T12:00"
        raise ConfigError("--since", "", reason) from exc
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


# -- commands ----------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from agent.memory.db import open_engine, upgrade

    path = _config_path(args)
    if path.exists() and args.add_rules:
        _add_default_rules(path)
    elif path.exists() and not args.force:
        print(f"config exists, kept: {path}")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE, encoding="utf-8")
        print(f"config written: {path}")
    config = load(path, missing_ok=False)
    db = _db(args, config, use="init")
    engine = open_engine(db)
    revision = upgrade(engine)
    engine.dispose()
    print(f"database ready: {db} (schema {revision})")
    return 0


def _add_default_rules(path: Path) -> None:
    """``init --add-rules``: the config at ``path`` with the default rules it lacks appended
    (a crash leaves the old file or the new one)."""
    from agent.config import utf8_text, with_default_rules
    from agent.files import write_text_replacing

    text, added = with_default_rules(utf8_text(path.read_bytes(), str(path)), str(path))
    if not added:
        print(f"config has every default rule, kept: {path}")
        return
    write_text_replacing(path, text, path.stat().st_mode & 0o777)
    print(f"default rules added to {path}: {', '.join(added)}")


def cmd_run(args: argparse.Namespace) -> int:
    from agent.runtime.daemon import run
    from agent.runtime.notify import Notifier

    config = _config(args)
    run(
        config,
        _db(args, config, use="run"),
        clock=SystemClock(),
        notifier=Notifier.from_environ(),
        record=args.record,
    )
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from agent.runtime.record import record

    counts, written = record(_config(args), args.output, args.seconds, SystemClock())
    kept = f" ({args.output} exists and is kept)" if written != args.output else ""
    print(f"record: {counts.summary()} -> {written}{kept}", file=sys.stderr)
    return 0


def _backend(config: Config, wake: bool) -> Backend | None:
    """The larger model for ``--wake`` (None: the diagnosis alone, and the log says why)."""
    if not wake:
        return None
    from agent.escalation.backends import make_backend

    backend, about = make_backend(config.escalation, SystemClock())
    (logger.info if backend is not None else logger.warning)("larger model: %s", about)
    return backend


def cmd_replay(args: argparse.Namespace) -> int:
    from agent.progress import byte_progress
    from agent.runtime.fence_admin import read_fences_file
    from agent.runtime.replay import replay_files

    config = _config(args)
    # Progress counts decompressed text: the size of a .gz file says nothing about it.
    total = sum(p.stat().st_size for p in args.traces if p.exists() and p.suffix != ".gz")
    with byte_progress("replay", total) as advance:
        result = replay_files(
            args.traces,
            config,
            db=_db(args, config, use="new") if getattr(args, "db", None) else None,
            fences=read_fences_file(args.fences) if args.fences else None,
            on_event=_event_printer(args.json),
            on_progress=advance,
            backend=_backend(config, args.wake),
        )
    resumed = (
        f"{result.resumed_after} samples were already in {result.db_path}, went on after them; "
        if result.resumed_after
        else ""
    )
    print(
        f"replay: {resumed}{result.counts.summary()}; {result.stats.events} events",
        file=sys.stderr,
    )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from agent.runtime.score import score_traces

    rows = score_traces(args.traces, _config(args), args.output)
    print(f"score: {rows} rows -> {args.output}", file=sys.stderr)
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from agent.memory.db import opened
    from agent.memory.store import MemoryStore

    config = _config(args)
    with opened(_db(args, config)) as engine:
        store = MemoryStore(engine)
        since = since_start(args.since, store.newest_sample_t, SystemClock().now)
        events = store.numbered_events(since=since, kind=args.kind)
    show = _event_printer(False)
    for event_id, event in events:
        if args.json:
            print(event.to_json(event_id))
            continue
        print(f"#{event_id:<6} ", end="")
        show(event)
    if not events:
        print("no events", file=sys.stderr)
    return 0


def _show_findings(rows: Sequence[dict[str, Any]], as_json: bool) -> None:
    for row in rows:
        if as_json:
            print(json.dumps(row, sort_keys=True, allow_nan=False))
            continue
        culprit = f"{row['culprit']} ({row['culprit_kind']})" if row["culprit"] else "no culprit"
        print(f"{iso_utc(row['t'])}  wake {row['wake_id']}  {row['cause']}: {culprit}")
        print(f"    {row['text']}")
        if row["text_source"] != "model":
            print(f"    ({_model_note(row)})")
        print(f"    advice: {row['advice']}")


def _model_note(row: dict[str, Any]) -> str:
    if row["status"] == "none":
        return "the diagnosis alone: no larger model asked"
    if row["status"] == "failed":
        return f"the larger model failed: {row['reason']}"
    if row["status"] in ("running", "stopped"):
        return f"the larger model's answer: {row['status']}"
    return f"the model's sentence was not used: it {row['check']}"


def cmd_findings(args: argparse.Namespace) -> int:
    from agent.memory.db import opened
    from agent.memory.store import MemoryStore
    from agent.memory.wakes import WakeStore

    config = _config(args)
    with opened(_db(args, config)) as engine:
        since = since_start(args.since, MemoryStore(engine).newest_sample_t, SystemClock().now)
        rows = WakeStore(engine).findings(since)
    _show_findings(rows, args.json)
    if not rows:
        print("no findings", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    import dataclasses

    from agent.memory.db import opened
    from agent.memory.store import MemoryStore
    from agent.memory.wakes import WakeStore
    from agent.runtime.explain import explain

    config = _config(args)
    changes = {k: v for k in ("backend", "model") if (v := getattr(args, k)) is not None}
    config = dataclasses.replace(
        config, escalation=dataclasses.replace(config.escalation, **changes)
    )
    with opened(_db(args, config)) as engine:
        store = MemoryStore(engine)
        result = explain(store, args.event_id, config.escalation, lambda: _backend(config, True))
        rows = WakeStore(engine).findings()
    _show_findings([r for r in rows if r["wake_id"] == result.wake_id], args.json)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from agent.memory.db import head_revision, open_engine, upgrade

    config = _config(args)
    db = _db(args, config, use="run")
    engine = open_engine(db)
    revision = upgrade(engine)
    engine.dispose()
    print(f"{db}: schema {revision} (head {head_revision()})")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from agent.platform import is_termux
    from agent.runtime import service

    vigil = shutil.which("vigil")
    argv = [vigil, "run"] if vigil else [sys.executable, "-m", "agent", "run"]
    # The service runs on what this command was told, flags or variables (a unit's
    # environment has neither the shell's VIGIL_CONFIG nor its VIGIL_DB).
    config = getattr(args, "config", None) or os.environ.get("VIGIL_CONFIG")
    if config:
        argv += ["--config", str(Path(config).expanduser().absolute())]
    db = getattr(args, "db", None) or os.environ.get("VIGIL_DB")
    if db:
        _db(args, _config(args), use="run")  # a unit on a missing database would only loop
        argv += ["--db", db if "://" in db else str(Path(db).expanduser().absolute())]
    termux = is_termux()
    paths = service.install(exec_argv=argv, termux=termux, force=args.force)
    print(service.hint(paths, termux))  # it names the files written
    return 0


def _fence_store(args: argparse.Namespace) -> FenceStore:
    from agent.memory.db import open_engine, upgrade
    from agent.memory.fences import FenceStore

    engine = open_engine(_db(args, _config(args), use="run"))
    upgrade(engine)
    return FenceStore(engine)


def cmd_fences(args: argparse.Namespace) -> int:
    from agent.detect.fences import fence_to_feature
    from agent.runtime import fence_admin
    from agent.runtime.fence_watch import load_fences

    store = _fence_store(args)
    if args.action == "list":
        fences = load_fences(store)
        if args.json:
            features = [fence_to_feature(f) for f in fences]
            print(json.dumps({"type": "FeatureCollection", "features": features}, indent=1))
        else:
            for f in fences:
                shape = f"circle {f.radius_m:g} m" if f.radius_m is not None else f.geometry["type"]
                dwell = f"  dwell {f.dwell_s:g} s" if f.dwell_s is not None else ""
                print(f"{f.name:<24} {shape}{dwell}")
        if not fences:
            print("no fences", file=sys.stderr)
        return 0
    if args.action == "remove":
        print(f"removed {fence_admin.remove_fences(store, args.names)} fence(s)")
        return 0
    if args.action == "add":
        new = [fence_admin.circle(args.name, args.lat, args.lon, args.radius_m, args.dwell_s)]
    else:
        new = fence_admin.read_fences_file(args.file)
    replace_all = args.action == "import" and args.replace
    replaced = sorted({f.name for f in new} & {f.name for f in load_fences(store)})
    count = fence_admin.store_fences(store, new, replace_all=replace_all)
    note = f" ({len(replaced)} replaced: {', '.join(replaced)})" if replaced else ""
    print(
        f"{count} fence(s) stored{note}; a running daemon picks them up within its commit interval"
    )
    return 0


def cmd_places(args: argparse.Namespace) -> int:
    from agent.memory.db import opened
    from agent.memory.state_rows import place_row
    from agent.memory.store import MemoryStore

    with opened(_db(args, _config(args))) as engine:
        places = MemoryStore(engine).load_state()["places"]
    rows = [place_row(p) for p in places]
    rows.sort(key=lambda r: (-int(r["visits"]), int(r["id"])))
    for r in rows:
        if args.json:
            print(json.dumps({**r, "name": f"place-{r['id']}"}, sort_keys=True))
        else:
            hours = float(r["dwell_s"]) / 3600.0
            print(
                f"place-{r['id']:<5} {float(r['lat']):10.5f} {float(r['lon']):11.5f}  "
                f"{r['visits']:>4} visits  {hours:7.1f} h  "
                f"{iso_utc(r['first_us'] / 1e6)} .. {iso_utc(r['last_us'] / 1e6)}"
            )
    if not rows:
        print("no places learned yet", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rich.table import Table
    from rich.text import Text

    from agent.doctor import run_checks
    from agent.platform import is_termux
    from agent.report.terminal import output_console

    config = _config(args)
    termux = is_termux()
    if not getattr(args, "verbose", 0):  # the table says it all; the sensors' own notes are noise
        logging.getLogger("agent").setLevel(logging.ERROR)
    checks = run_checks(
        config,
        _db(args, config, use="any"),
        SystemClock().now(),
        termux=termux,
        environ=os.environ,
    )
    failed = [c for c in checks if c.required and not c.ok]
    if args.json:
        print(json.dumps([c.as_dict() for c in checks], indent=1))
    else:
        table = Table(title=f"vigil doctor ({'Termux' if termux else sys.platform})")
        for column in ("", "check", "status", "detail"):
            table.add_column(column, overflow="fold")
        for c in checks:
            status = "ok" if c.ok else ("FAIL" if c.required else "no")
            table.add_row(c.section, c.name, status, Text(c.detail))
        output_console().print(table)
    for c in failed:
        print(
            f"vigil doctor: {c.name}: enabled in the config but cannot work: {c.detail}",
            file=sys.stderr,
        )
    return 2 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    if not args.json:
        print(
            "vigil demo: one synthetic day: home and work fenced and learned as places, "
            "a GPS outage at noon, a CPU runaway at 14:00"
        )
    config = Config()
    db = _demo_db(getattr(args, "db", None))
    findings: list[dict[str, Any]] = []
    result = run_demo(
        config,
        _event_printer(args.json),
        db,
        backend=_backend(config, args.wake),
        on_findings=lambda wakes: findings.extend(wakes.findings()),
    )
    if not args.json:
        wakes = "1 wake" if len(findings) == 1 else f"{len(findings)} wakes"
        print(f"\nWhat the {wakes} of the larger model found:")
        _show_findings(findings, as_json=False)
        if not args.wake:
            print("(vigil demo --wake also asks the larger model for its sentence)")
    print(f"demo: {result.counts.summary()}; {result.stats.events} events", file=sys.stderr)
    print(f"demo: kept in {db}; what it cost: vigil report power --db {db}", file=sys.stderr)
    return 0


def _demo_db(given: str | None) -> Path:
    """The demo's database: a new file the user named, or the data folder's ``demo.db``,
    replaced at each run."""
    if given is not None:
        path = Path(given)
        if path.exists() and path.stat().st_size > 0:
            raise StorageError(
                str(path), "exists: vigil demo writes a new database, name a new file"
            )
        return path
    path = default_db_path().parent / "demo.db"
    for old in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        old.unlink(missing_ok=True)
    return path


def cmd_report(args: argparse.Namespace) -> int:
    from agent.report.command import report_power

    config = _config(args)
    return report_power(args, _db(args, config))


def cmd_power(args: argparse.Namespace) -> int:
    from agent.report.command import calibrate

    config = _config(args)
    return calibrate(args, config, _db(args, config, use="run"))


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "init": cmd_init,
    "run": cmd_run,
    "record": cmd_record,
    "replay": cmd_replay,
    "score": cmd_score,
    "events": cmd_events,
    "findings": cmd_findings,
    "explain": cmd_explain,
    "db": cmd_db,
    "service": cmd_service,
    "import": import_command.run,
    "fences": cmd_fences,
    "places": cmd_places,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
    "report": cmd_report,
    "power": cmd_power,
}
