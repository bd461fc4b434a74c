"""Does vigil's memory level off? Resident memory over a long replay and a long live run.

Two parts, each in a temporary folder with its own config and database:

- **Replay soak**: a synthetic trace of ``--days`` days (about 24,000 samples a day, so the
  default 42 days is about 1,000,000 samples) replayed by ``vigil replay --db DB TRACE`` in a
  child process, with every stage on (the default config). The child's resident memory (RSS)
  is read every ``--interval-s`` seconds. RSS is a saw-tooth: replay holds each batch of
  up to 20,000 samples until its commit, so RSS climbs by megabytes and falls back at each
  commit. So growth is judged by the lows (what stays after the commits): warm-up is the
  first ``--warmup`` (20 %) of the run's wall time, and growth is the lowest RSS in 85-95 %
  of it minus the lowest in the tenth after warm-up; the goal is at most ``--goal-mb``
  (2 MB). The peaks of the same spans are compared too, and the largest RSS after warm-up
  with the one reading at its end; the lowest and highest reading of each tenth are shown.
  CPU time is the child's own (``wait4``: user + system), so other work on the machine does
  not count. At the end: the size of the stages' state (``detector_state``) and of the
  database.
- **Live soak**: the real daemon (``vigil run``) with the system and apps sensors every second
  (battery and location off, the always-on tier on, no larger model), for ``--live-seconds``
  (default one hour); RSS every ``--live-interval-s`` (10 s). Prints RSS at 1, 5, 10, 20, 30,
  45 and 60 minutes (those the run reaches) and the slope of a least-squares line over the
  last half of the run, in MB per hour: near 0 when RSS has levelled off. A line per minute
  goes to stdout as it runs, so a run's log says how far it got.

    python bench/soak.py                                   # both parts
    python bench/soak.py --replay-only [--days 42] [--keep DIR]
    python bench/soak.py --live-only [--live-seconds 3600]
    python bench/soak.py --days 2 --live-seconds 120       # a smoke run

Exits 1 when the replay soak's growth is over the goal, or a child process fails.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from children import RUNNING, clean_env, launch, stop_children, vigil_argv
from rich.console import Console
from rich.table import Table

from agent.demo import write_synthetic_trace

MB = 1024 * 1024
LIVE_MARKS_MIN = (1, 5, 10, 20, 30, 45, 60)
LIVE_CONFIG = """\
[daemon]
commit_interval_s = 1.0
[sensors.system]
interval_s = 1.0
[sensors.battery]
enabled = false
[sensors.location]
source = "none"
[sensors.apps]
interval_s = 1.0
# Without a graphical session the apps sensor polls only as often as it ranks processes.
rank_every_s = 1.0
[anomaly]
enabled = true
[escalation]
backend = "none"
"""


@dataclass
class ReplaySoak:
    samples: int
    trace_mb: float
    wall_s: float
    cpu_s: float
    rss: list[tuple[float, int]]  # (seconds since start, RSS bytes)
    warmup_s: float
    warmup_rss: int  # the reading at the end of warm-up
    warmup_peak: int  # the largest reading in the tenth of the run after warm-up
    warmup_low: int  # the smallest one
    max_rss_after: int  # the largest reading after warm-up
    end_peak: int  # the largest reading in 85-95 % of the run (before the replay closes)
    end_low: int  # the smallest one
    max_rss: int
    state_bytes: int
    state_rows: int
    db_bytes: int
    events: int


def rss_of(pid: int) -> int | None:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None


def db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def replay_soak(args: argparse.Namespace, where: Path, console: Console) -> ReplaySoak:
    trace = where / f"synthetic-{args.days}d.jsonl"
    start = time.perf_counter()
    samples = write_synthetic_trace(trace, days=args.days)
    trace_mb = trace.stat().st_size / 1e6
    console.print(
        f"replay soak: trace of {args.days} days, {samples:,} samples, {trace_mb:.0f} MB, "
        f"written in {time.perf_counter() - start:.0f} s"
    )
    config = where / "replay.toml"
    config.write_text("# every key at its default: every stage on\n")
    db = where / "replay.db"
    db.unlink(missing_ok=True)
    log = where / "replay.log"
    argv = [*vigil_argv(), "--config", str(config), "--db", str(db), "replay", str(trace)]
    with open(log, "wb") as err:
        child = launch(argv, clean_env(where), err)
    t0 = time.monotonic()
    rss: list[tuple[float, int]] = []
    status = 0
    usage = None
    next_line = 60.0
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            RUNNING.discard(child)
            break
        now = time.monotonic() - t0
        value = rss_of(child.pid)
        if value is not None:
            rss.append((now, value))
        if now >= next_line:
            console.print(f"  replay: {now:5.0f} s, RSS {value / MB if value else 0:.1f} MB")
            next_line += 60.0
        time.sleep(args.interval_s)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.monotonic() - t0
    if child.returncode != 0:
        sys.exit(f"vigil replay exited {child.returncode}:\n" + log.read_text()[-3000:])
    assert usage is not None
    if not rss:
        sys.exit("the replay ended before its memory could be read: use more --days")
    # RSS is a saw-tooth (each batch is held until its commit): compare lows, and peaks.
    warmup_s = args.warmup * wall_s
    at_warmup = next((r for r in rss if r[0] >= warmup_s), rss[-1])
    window = [v for t, v in rss if warmup_s <= t < warmup_s + 0.1 * wall_s] or [at_warmup[1]]
    after = [v for t, v in rss if t >= warmup_s] or [at_warmup[1]]
    last = [v for t, v in rss if 0.85 * wall_s <= t < 0.95 * wall_s] or [rss[-1][1]]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        state_bytes, state_rows = conn.execute(
            "SELECT coalesce(sum(length(CAST(name AS BLOB)) + length(CAST(data AS BLOB))), 0),"
            " count(*) FROM detector_state"
        ).fetchone()
        stored = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    if stored != samples:
        console.print(f"[red]the database holds {stored:,} samples of {samples:,}[/red]")
    return ReplaySoak(
        samples=stored,
        trace_mb=trace_mb,
        wall_s=wall_s,
        cpu_s=usage.ru_utime + usage.ru_stime,
        rss=rss,
        warmup_s=at_warmup[0],
        warmup_rss=at_warmup[1],
        warmup_peak=max(window),
        warmup_low=min(window),
        max_rss_after=max(after),
        end_peak=max(last),
        end_low=min(last),
        max_rss=max(usage.ru_maxrss * 1024, max(v for _, v in rss)),
        state_bytes=int(state_bytes),
        state_rows=int(state_rows),
        db_bytes=db_bytes(db),
        events=int(events),
    )


def report_replay(r: ReplaySoak, goal_mb: float, console: Console) -> bool:
    growth = (r.end_low - r.warmup_low) / MB
    ok = growth <= goal_mb
    table = Table(title="replay soak: vigil replay with every stage on")
    table.add_column("measure")
    table.add_column("value", justify="right")
    tenth = f"{r.warmup_s:.0f}-{r.warmup_s + 0.1 * r.wall_s:.0f} s"
    end = f"{0.85 * r.wall_s:.0f}-{0.95 * r.wall_s:.0f} s"
    rows = [
        ("samples", f"{r.samples:,}"),
        ("events", f"{r.events:,}"),
        ("wall s", f"{r.wall_s:.0f}"),
        ("CPU s (user + system)", f"{r.cpu_s:.0f}"),
        ("samples per CPU s", f"{r.samples / r.cpu_s:,.0f}"),
        ("samples per wall s", f"{r.samples / r.wall_s:,.0f}"),
        (f"RSS at the end of warm-up ({r.warmup_s:.0f} s) MB", f"{r.warmup_rss / MB:.1f}"),
        (
            f"RSS low / peak in the tenth after warm-up ({tenth}) MB",
            f"{r.warmup_low / MB:.1f} / {r.warmup_peak / MB:.1f}",
        ),
        (
            f"RSS low / peak at 85-95 % of the run ({end}) MB",
            f"{r.end_low / MB:.1f} / {r.end_peak / MB:.1f}",
        ),
        ("max RSS after warm-up MB", f"{r.max_rss_after / MB:.1f}"),
        ("max RSS MB (the whole run, ru_maxrss)", f"{r.max_rss / MB:.1f}"),
        (
            f"growth of the lows after warm-up MB (goal <= {goal_mb:g})",
            f"[{'green' if ok else 'red'}]{growth:+.2f}[/]",
        ),
        ("growth of the peaks after warm-up MB", f"{(r.end_peak - r.warmup_peak) / MB:+.2f}"),
        (
            "max RSS after warm-up minus the reading at its end MB",
            f"{(r.max_rss_after - r.warmup_rss) / MB:+.2f}",
        ),
        ("RSS at the last reading MB", f"{r.rss[-1][1] / MB:.1f}"),
        ("detector_state rows", f"{r.state_rows}"),
        ("detector_state bytes", f"{r.state_bytes:,}"),
        ("database MB (with WAL)", f"{r.db_bytes / 1e6:.1f}"),
        ("trace MB", f"{r.trace_mb:.0f}"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    deciles = Table(title="replay soak: RSS by tenth of the run")
    for column in ("of the run", "seconds", "readings", "low MB", "high MB"):
        deciles.add_column(column, justify="right")
    for k in range(10):
        lo_s, hi_s = k / 10 * r.wall_s, (k + 1) / 10 * r.wall_s
        values = [v for t, v in r.rss if lo_s <= t < hi_s]
        if values:
            deciles.add_row(
                f"{k * 10}-{k * 10 + 10} %",
                f"{lo_s:.0f}-{hi_s:.0f}",
                f"{len(values)}",
                f"{min(values) / MB:.1f}",
                f"{max(values) / MB:.1f}",
            )
    console.print(deciles)
    return ok


def slope_mb_per_hour(points: list[tuple[float, int]]) -> float:
    """The least-squares slope of RSS over time, MB per hour."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return float("nan")
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600 / MB


def live_soak(args: argparse.Namespace, where: Path, console: Console) -> bool:
    config = where / "live.toml"
    config.write_text(LIVE_CONFIG)
    db = where / "live.db"
    vigil = vigil_argv()
    env = clean_env(where)
    base = [*vigil, "--config", str(config), "--db", str(db)]
    subprocess.run([*base, "init"], env=env, check=True, capture_output=True)
    log = where / "live.log"
    with open(log, "wb") as err:
        daemon = launch([*base, "run"], env, err)
    start = time.monotonic()
    while b"vigil running" not in log.read_bytes():
        if time.monotonic() - start > 120 or daemon.poll() is not None:
            sys.exit("the daemon did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
    t0 = time.monotonic()
    console.print(
        f"live soak: vigil run (system and apps every 1 s) for {args.live_seconds:g} s, "
        f"RSS every {args.live_interval_s:g} s; started after {t0 - start:.1f} s"
    )
    proc = psutil.Process(daemon.pid)
    rss: list[tuple[float, int]] = []
    next_line = 60.0
    try:
        while (now := time.monotonic() - t0) <= args.live_seconds:
            if daemon.poll() is not None:
                sys.exit(f"vigil run exited {daemon.returncode}:\n" + log.read_text()[-3000:])
            value = rss_of(daemon.pid)
            if value is not None:
                rss.append((now, value))
            if now >= next_line:
                cpu = proc.cpu_times()
                console.print(
                    f"  live: {now / 60:5.1f} min, RSS {value / MB if value else 0:.1f} MB, "
                    f"CPU {cpu.user + cpu.system:.1f} s"
                )
                next_line += 60.0
            time.sleep(max(0.0, args.live_interval_s - (time.monotonic() - t0 - now)))
        cpu = proc.cpu_times()
        cpu_s = cpu.user + cpu.system
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
        RUNNING.discard(daemon)
    if code != 0:
        console.print(log.read_text()[-3000:])
        console.print(f"[red]vigil run exited {code}[/red]")
        return False
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        stored = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    report_live(rss, cpu_s, stored, events, db_bytes(db), args.live_interval_s, console)
    return True


def report_live(
    rss: list[tuple[float, int]],
    cpu_s: float,
    stored: int,
    events: int,
    size: int,
    interval_s: float,
    console: Console,
) -> None:
    end = rss[-1][0]
    table = Table(title="live soak: vigil run, RSS over time")
    for column in ("minute", "RSS MB"):
        table.add_column(column, justify="right")
    for minute in LIVE_MARKS_MIN:
        if minute * 60 > end + interval_s:
            break
        reading = min(rss, key=lambda x: abs(x[0] - minute * 60))
        table.add_row(f"{minute}", f"{reading[1] / MB:.1f}")
    table.add_row(f"end ({end / 60:.1f})", f"{rss[-1][1] / MB:.1f}")
    console.print(table)
    half = [r for r in rss if r[0] >= end / 2]
    console.print(
        f"live soak: {end / 60:.1f} min, {stored:,} samples and {events:,} events stored, "
        f"database {size / 1e6:.1f} MB; CPU {cpu_s:.1f} s ({100 * cpu_s / end:.2f} % of one "
        f"core); RSS max {max(v for _, v in rss) / MB:.1f} MB; slope over the last half "
        f"{slope_mb_per_hour(half):+.2f} MB/hour (whole run {slope_mb_per_hour(rss):+.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--replay-only", action="store_true", help="only the replay soak")
    only.add_argument("--live-only", action="store_true", help="only the live soak")
    parser.add_argument("--days", type=int, default=42, help="synthetic days to replay")
    parser.add_argument("--interval-s", type=float, default=1.0, help="replay RSS readings")
    parser.add_argument(
        "--warmup", type=float, default=0.2, help="share of the replay's wall time for warm-up"
    )
    parser.add_argument("--goal-mb", type=float, default=2.0, help="most RSS growth allowed")
    parser.add_argument("--live-seconds", type=float, default=3600.0)
    parser.add_argument("--live-interval-s", type=float, default=10.0, help="live RSS readings")
    parser.add_argument("--keep", type=Path, help="keep traces, databases and logs here")
    args = parser.parse_args()
    # Wide enough that the tables of a run logged to a file do not wrap.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    ok = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="vigil-soak-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        try:
            if not args.live_only:
                result = replay_soak(args, where, console)
                ok = report_replay(result, args.goal_mb, console) and ok
            if not args.replay_only:
                ok = live_soak(args, where, console) and ok
        finally:
            stop_children()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
