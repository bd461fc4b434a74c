"""What a kill -9 costs vigil: nothing committed is lost or stored twice, and a replay resumes.

Two parts, each in a temporary folder with its own config and database:

- **Daemon**: ``vigil run --record TRACE`` (system and apps sensors every second, commits every
  second of sample time, a rule that records an event in every run) on one database, killed
  with SIGKILL after a random delay (uniform in ``--daemon-delay``, from the launch, so some
  kills land in start-up), then started again; ``--kills`` times, then one last start
  stopped with SIGTERM. Just before each kill a read-only connection reads every sample and
  event; after the kill the database must pass ``PRAGMA integrity_check``, and every row
  ever seen must still be there, unchanged, at every later look (after the kill, and after
  the next start); no sample twice by (sensor, t_us), no event twice by (t_us, kind,
  subject, data). At the end each run's recorded trace (every sample that run read, in the
  order the loop took them) is compared with the database: every stored sample was read,
  none is stored twice, and what was read but not committed (lost to a kill) is the end of
  its run's trace, at most one commit interval (plus one poll) of sample time.
- **Replay**: a synthetic trace of ``--days`` days and a reference database from one
  uninterrupted ``vigil replay --db REF TRACE``; then rounds: a fresh database, the same
  command killed at a random moment and run again until one run finishes. A kill is aimed
  at start-up (a delay within the time a replay of a trace without samples takes), at a
  commit (0 to 80 ms after the first write of the run's 1st, 2nd or 3rd burst of writes to
  the database or its WAL, polled every 2 ms) or anywhere in the run (a delay up to the
  run's expected end); how many kills came within 0.1 s of a write, and before the run's
  first commit, is counted. After each kill: integrity, the progress row's sample count
  equals the stored samples, the newest sample and event ids are no lower than just before
  the kill and none below them is missing, no duplicates. After each round (at most 12
  kills, then its last run goes to the end) the database must equal the reference: the
  same samples (t_us, sensor, data) in the same order and the same events (t_us, kind,
  subject, data). Rounds go on until ``--kills`` kills.

Timings are wall seconds (the kills are timed by the wall clock) and the children's CPU
seconds (``wait4``: user + system).

    python bench/crash.py [--kills 100] [--seed 1] [--days 2] [--keep DIR]
    python bench/crash.py --kills 3 --days 1       # a smoke run

Exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from children import RUNNING, clean_env, launch, stop_children, vigil_argv
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.demo import write_synthetic_trace

DAEMON_CONFIG = """\
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
[escalation]
backend = "none"
# An event in every run: memory is always above 0 %, and the rule is named after the run
# (a rule's state is kept across starts, so one name would fire once, in the first run),
# so it fires on the first system sample of each run.
[[rules]]
name = "crash_bench_{run}"
stream = "system.mem_used_pct"
above = 0.0
for_s = 0.0
action = "record"
"""
REPLAY_CONFIG = """\
[escalation]
backend = "none"
"""
COMMIT_INTERVAL_S = 1.0
POLL_S = 1.0
#: Kills per replay round at most; then the round's last run goes to its end.
MAX_KILLS_PER_ROUND = 12

Row = tuple[object, ...]


@dataclass
class Finished:
    code: int  # exit code; -9 when killed
    wall_s: float
    cpu_s: float


@dataclass
class DaemonResult:
    kills: int = 0
    early_exits: list[str] = field(default_factory=list)
    killed_in_startup: int = 0
    integrity_failures: list[str] = field(default_factory=list)
    rows_lost: list[str] = field(default_factory=list)
    rows_changed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    startup_s: list[float] = field(default_factory=list)
    delays_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    check_s: list[float] = field(default_factory=list)
    samples_stored: int = 0
    events_stored: int = 0
    samples_read: int = 0
    torn_lines: int = 0
    lost_per_kill: list[int] = field(default_factory=list)
    lost_span_s: list[float] = field(default_factory=list)
    loss_problems: list[str] = field(default_factory=list)
    unread_stored: int = 0
    final_exit: int = 0


@dataclass
class ReplayResult:
    samples: int = 0
    events: int = 0
    reference_wall_s: float = 0.0
    reference_cpu_s: float = 0.0
    startup_s: float = 0.0
    commit_positions: list[int] = field(default_factory=list)
    rounds: int = 0
    runs: int = 0
    kills: int = 0
    aimed: Counter[str] = field(default_factory=Counter)
    near_write: int = 0
    before_first_commit: int = 0
    integrity_failures: list[str] = field(default_factory=list)
    rows_lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    progress_mismatches: list[str] = field(default_factory=list)
    resume_mismatches: list[str] = field(default_factory=list)
    failed_runs: list[str] = field(default_factory=list)
    round_wall_s: list[float] = field(default_factory=list)
    round_cpu_s: list[float] = field(default_factory=list)
    kills_per_round: list[int] = field(default_factory=list)
    check_s: list[float] = field(default_factory=list)


def reap(child: subprocess.Popen[bytes], started: float, *, block: bool = True) -> Finished | None:
    """Wait for ``child`` with ``wait4`` (its CPU time too); None while it runs (not ``block``)."""
    pid, status, usage = os.wait4(child.pid, 0 if block else os.WNOHANG)
    if not pid:
        return None
    child.returncode = os.waitstatus_to_exitcode(status)
    RUNNING.discard(child)
    return Finished(child.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime)


def connect_ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30.0)


def integrity(db: Path) -> str:
    conn = connect_ro(db)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return f"error: {exc}"
    finally:
        conn.close()
    text = "; ".join(str(r[0]) for r in rows)
    return "" if text == "ok" else text


def duplicates(conn: sqlite3.Connection) -> tuple[int, int]:
    """Samples stored more than once by (sensor, t_us), events by (t_us, kind, subject, data):
    the extra copies."""
    samples = conn.execute(
        "SELECT coalesce(sum(n - 1), 0) FROM "
        "(SELECT count(*) AS n FROM samples GROUP BY sensor, t_us HAVING n > 1)"
    ).fetchone()[0]
    events = conn.execute(
        "SELECT coalesce(sum(n - 1), 0) FROM "
        "(SELECT count(*) AS n FROM events GROUP BY t_us, kind, subject, data HAVING n > 1)"
    ).fetchone()[0]
    return int(samples), int(events)


# -- the daemon ------------------------------------------------------------------------------


def daemon_rows(db: Path) -> tuple[dict[int, Row], dict[int, Row]]:
    """Every sample and event by id, read in one transaction of a read-only connection."""
    conn = connect_ro(db)
    try:
        conn.execute("BEGIN")
        samples = {r[0]: r[1:] for r in conn.execute("SELECT id, t_us, sensor, data FROM samples")}
        events = {
            r[0]: r[1:] for r in conn.execute("SELECT id, t_us, kind, subject, data FROM events")
        }
        conn.execute("COMMIT")
    finally:
        conn.close()
    return samples, events


def compare_seen(
    seen: dict[int, Row], now: dict[int, Row], what: str, when: str, r: DaemonResult
) -> None:
    """Every row seen before must be there now, unchanged; then remember the new ones."""
    gone = [i for i in seen if i not in now]
    changed = [i for i in seen if i in now and now[i] != seen[i]]
    if gone:
        r.rows_lost.append(f"{when}: {len(gone)} {what} gone (ids {gone[:5]})")
    if changed:
        r.rows_changed.append(f"{when}: {len(changed)} {what} changed (ids {changed[:5]})")
    seen.update(now)


def daemon_part(
    args: argparse.Namespace, where: Path, rng: random.Random, console: Console
) -> DaemonResult:
    r = DaemonResult()
    config = where / "daemon.toml"
    config.write_text(DAEMON_CONFIG.format(run=0))
    db = where / "daemon.db"
    env = clean_env(where)
    base = [*vigil_argv(), "--config", str(config), "--db", str(db)]
    subprocess.run([*base, "init"], env=env, check=True, capture_output=True)
    seen_samples: dict[int, Row] = {}
    seen_events: dict[int, Row] = {}
    traces: list[Path] = []
    t_all = time.monotonic()
    lo, hi = args.daemon_delay
    for i in range(args.kills + 1):
        last = i == args.kills  # the last start is stopped with SIGTERM, not killed
        trace = where / f"run-{i:03d}.jsonl"
        traces.append(trace)
        log = where / f"run-{i:03d}.log"
        config.write_text(DAEMON_CONFIG.format(run=i))
        with open(log, "wb") as err:
            started = time.monotonic()
            child = launch([*base, "run", "--record", str(trace)], env, err)
        delay = rng.uniform(lo, hi)
        running_at: float | None = None
        done: Finished | None = None
        while (now := time.monotonic()) < started + delay or (last and running_at is None):
            if running_at is None and b"vigil running" in log.read_bytes():
                running_at = now - started
            done = reap(child, started, block=False)
            if done is not None or now - started > 120:
                break
            time.sleep(0.01)
        if done is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            r.early_exits.append(f"run {i}: exited {done.code} by itself: {' | '.join(tail)}")
            r.cpu_s += done.cpu_s
            continue
        if running_at is not None:
            r.startup_s.append(running_at)
        t_check = time.monotonic()
        before_s, before_e = daemon_rows(db)
        r.check_s.append(time.monotonic() - t_check)
        when = f"run {i}, kill at {delay:.2f} s"
        compare_seen(seen_samples, before_s, "samples", f"{when}, before the kill", r)
        compare_seen(seen_events, before_e, "events", f"{when}, before the kill", r)
        if last:
            time.sleep(2.0)  # a few commits after the start, then a clean stop
            child.send_signal(signal.SIGTERM)
            done = reap(child, started)
            assert done is not None
            r.final_exit = done.code
            r.cpu_s += done.cpu_s
        else:
            child.send_signal(signal.SIGKILL)
            done = reap(child, started)
            assert done is not None
            r.cpu_s += done.cpu_s
            r.kills += 1
            r.delays_s.append(delay)
            if running_at is None:
                r.killed_in_startup += 1
        t_check = time.monotonic()
        problem = integrity(db)
        if problem:
            r.integrity_failures.append(f"{when}: {problem}")
        after_s, after_e = daemon_rows(db)
        compare_seen(seen_samples, after_s, "samples", f"{when}, after the kill", r)
        compare_seen(seen_events, after_e, "events", f"{when}, after the kill", r)
        conn = connect_ro(db)
        dup_s, dup_e = duplicates(conn)
        conn.close()
        if dup_s or dup_e:
            r.duplicates.append(f"{when}: {dup_s} samples, {dup_e} events twice")
        r.check_s.append(time.monotonic() - t_check)
        if (i + 1) % 10 == 0 or last:
            console.print(
                f"  daemon: {r.kills} kills, {len(seen_samples)} samples and "
                f"{len(seen_events)} events stored, {time.monotonic() - t_all:.0f} s"
            )
    r.wall_s = time.monotonic() - t_all
    if r.final_exit != 0:
        r.early_exits.append(f"the last start, stopped with SIGTERM, exited {r.final_exit}")
    check_traces(db, traces, r)
    return r


def read_recorded(trace: Path) -> tuple[list[tuple[str, int]], int]:
    """A run's recorded samples as (sensor, t_us) in the order the loop took them, and how
    many lines could not be read (a line torn by the kill)."""
    out: list[tuple[str, int]] = []
    torn = 0
    if not trace.exists():
        return out, torn
    with trace.open("rb") as f:
        for n, line in enumerate(f):
            try:
                row = json.loads(line)
            except ValueError:
                torn += 1
                continue
            if n == 0 and "vigil_trace" in row:
                continue
            out.append((row["sensor"], round(row["t"] * 1_000_000)))
    return out, torn


def check_traces(db: Path, traces: list[Path], r: DaemonResult) -> None:
    """Each run's trace against the database: what was committed, what a kill lost."""
    conn = connect_ro(db)
    stored = Counter(conn.execute("SELECT sensor, t_us FROM samples").fetchall())
    r.samples_stored = sum(stored.values())
    r.events_stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    read_anywhere: set[tuple[str, int]] = set()
    for i, trace in enumerate(traces):
        rows, torn = read_recorded(trace)
        r.torn_lines += torn
        r.samples_read += len(rows)
        read_anywhere.update(rows)
        twice = [row for row in rows if stored[row] > 1]
        if twice:
            r.duplicates.append(f"run {i}: {len(twice)} recorded samples stored more than once")
        committed = [j for j, row in enumerate(rows) if stored[row]]
        lost = [j for j, row in enumerate(rows) if not stored[row]]
        if i == len(traces) - 1:  # the clean stop commits everything
            if lost:
                r.loss_problems.append(f"run {i} (SIGTERM): {len(lost)} samples not committed")
            continue
        r.lost_per_kill.append(len(lost))
        if not lost:
            r.lost_span_s.append(0.0)
            continue
        if committed and committed[-1] > lost[0]:
            r.loss_problems.append(
                f"run {i}: a sample was lost before a committed one (trace line {lost[0] + 2})"
            )
        times = [rows[j][1] for j in lost]
        span_s = (max(times) - min(times)) / 1e6
        r.lost_span_s.append(span_s)
        if span_s > COMMIT_INTERVAL_S + POLL_S:
            r.loss_problems.append(
                f"run {i}: {len(lost)} samples lost over {span_s:.2f} s of sample time "
                f"(more than a commit interval and a poll)"
            )
    r.unread_stored = sum(1 for row in stored if row not in read_anywhere)


# -- replay ----------------------------------------------------------------------------------


def final_rows(db: Path) -> tuple[list[Row], list[Row]]:
    conn = connect_ro(db)
    try:
        samples = conn.execute("SELECT t_us, sensor, data FROM samples ORDER BY id").fetchall()
        events = conn.execute(
            "SELECT t_us, kind, subject, data FROM events ORDER BY t_us, kind, subject, data"
        ).fetchall()
    finally:
        conn.close()
    return samples, events


def progress(conn: sqlite3.Connection) -> tuple[int, bool] | None:
    row = conn.execute("SELECT value FROM meta WHERE key LIKE 'replay:%'").fetchone()
    if row is None:
        return None
    value = json.loads(row[0])
    return int(value["samples"]), bool(value.get("done"))


def max_ids(db: Path) -> tuple[int, int, tuple[int, bool] | None]:
    """The newest sample and event ids and the progress row, in one read transaction: a
    quick look just before a kill."""
    if not db.exists():
        return 0, 0, None
    conn = connect_ro(db)
    try:
        conn.execute("BEGIN")
        sample = conn.execute("SELECT coalesce(max(id), 0) FROM samples").fetchone()[0]
        event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        state = progress(conn)
        conn.execute("COMMIT")
    except sqlite3.OperationalError:  # no tables yet: killed before the schema
        return 0, 0, None
    finally:
        conn.close()
    return int(sample), int(event), state


def written_at(db: Path) -> int:
    """The newest modification time (ns) of the database and its WAL."""
    newest = 0
    for path in (db, Path(f"{db}-wal")):
        try:
            newest = max(newest, path.stat().st_mtime_ns)
        except FileNotFoundError:
            pass
    return newest


def replay_argv(where: Path, db: Path, trace: Path) -> list[str]:
    config = where / "replay.toml"
    return [*vigil_argv(), "--config", str(config), "--db", str(db), "replay", str(trace)]


def run_replay(
    argv: list[str], env: dict[str, str], log: Path, *, poll_db: Path | None = None
) -> tuple[Finished, list[int]]:
    """A replay to its end; with ``poll_db``, the progress positions seen while it ran."""
    positions: list[int] = []
    with open(log, "ab") as err:
        started = time.monotonic()
        child = launch(argv, env, err)
    while (done := reap(child, started, block=poll_db is None)) is None:
        assert poll_db is not None
        state = max_ids(poll_db)[2]
        if state is not None and (not positions or positions[-1] != state[0]):
            positions.append(state[0])
        time.sleep(0.02)
    return done, positions


def aim(rng: random.Random, startup_s: float, rate: float, left: int) -> tuple[str, float]:
    """Where to kill a run with ``left`` samples to go: in start-up, around a database write
    (``commit``: the delay is then taken from the writes the run is seen to make), or
    anywhere in the run."""
    phase = rng.choices(["start-up", "commit", "run"], weights=[1, 1, 2])[0]
    if phase == "start-up":
        return phase, rng.uniform(0.05, startup_s)
    if phase == "commit":
        return phase, 0.0
    return phase, rng.uniform(startup_s, startup_s + left / rate)


def replay_part(
    args: argparse.Namespace, where: Path, rng: random.Random, console: Console
) -> ReplayResult:
    r = ReplayResult()
    (where / "replay.toml").write_text(REPLAY_CONFIG)
    env = clean_env(where)
    trace = where / f"synthetic-{args.days}d.jsonl"
    r.samples = write_synthetic_trace(trace, days=args.days)
    empty = where / "empty.jsonl"
    with trace.open("rb") as f:
        empty.write_bytes(f.readline())
    log = where / "replay.log"
    startups = []
    for k in range(3):
        finished, _ = run_replay(replay_argv(where, where / f"empty-{k}.db", empty), env, log)
        if finished.code != 0:
            sys.exit(f"vigil replay of a trace without samples exited {finished.code}")
        startups.append(finished.wall_s)
    r.startup_s = statistics.median(startups)
    reference = where / "reference.db"
    finished, positions = run_replay(
        replay_argv(where, reference, trace), env, log, poll_db=reference
    )
    if finished.code != 0:
        sys.exit(f"the reference replay exited {finished.code}:\n" + log.read_text()[-3000:])
    r.reference_wall_s, r.reference_cpu_s = finished.wall_s, finished.cpu_s
    r.commit_positions = positions
    ref_samples, ref_events = final_rows(reference)
    r.events = len(ref_events)
    if len(ref_samples) != r.samples:
        sys.exit(f"the reference holds {len(ref_samples)} samples of {r.samples}")
    rate = r.samples / max(0.1, r.reference_wall_s - r.startup_s)
    console.print(
        f"replay: {r.samples:,} samples, reference {r.reference_wall_s:.1f} s "
        f"({r.reference_cpu_s:.1f} CPU s), start-up {r.startup_s:.2f} s, "
        f"{rate:,.0f} samples/s, commits seen at {positions}"
    )
    while r.kills < args.kills:
        r.rounds += 1
        db = where / f"round-{r.rounds:03d}.db"
        argv = replay_argv(where, db, trace)
        t_round = time.monotonic()
        cpu = 0.0
        kills = 0
        while True:
            r.runs += 1
            before = max_ids(db)[2]
            done_before = before[0] if before else 0
            may_kill = r.kills < args.kills and kills < MAX_KILLS_PER_ROUND
            phase, delay = aim(rng, r.startup_s, rate, r.samples - done_before)
            # commit: kill 0 to 80 ms after the first write of the 1st, 2nd or 3rd burst of
            # writes this run makes (a commit, or the schema and counters at start-up)
            skip, lag = rng.randrange(3), rng.uniform(0.0, 0.08)
            bursts, burst_at, last_change = 0, None, -1.0
            last_write, write_seen = written_at(db), 0.0
            mark = log.stat().st_size
            with open(log, "ab") as err:
                started = time.monotonic()
                child = launch(argv, env, err)
            finished_run: Finished | None = None
            while may_kill:
                now = time.monotonic()
                if phase != "commit" and now >= started + delay:
                    break
                if burst_at is not None and now >= burst_at + lag:
                    break
                if (finished_run := reap(child, started, block=False)) is not None:
                    break
                stamp = written_at(db)
                if stamp != last_write:
                    if now - last_change > 0.05:  # a new burst
                        if bursts == skip:
                            burst_at = now
                        bursts += 1
                    last_write, write_seen, last_change = stamp, now, now
                time.sleep(0.002)
            if finished_run is None and may_kill:
                snapshot = max_ids(db)
                child.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                finished_run = reap(child, started)
                assert finished_run is not None
                if finished_run.code == -signal.SIGKILL:
                    r.kills += 1
                    kills += 1
                    r.aimed[phase] += 1
                    if last_write and killed_at - write_seen <= 0.1:
                        r.near_write += 1
                    check_replay_kill(db, snapshot, r, f"round {r.rounds}, kill {kills}")
                    if (snapshot[2][0] if snapshot[2] else 0) == done_before:
                        r.before_first_commit += 1
            if finished_run is None:
                finished_run = reap(child, started)
                assert finished_run is not None
            cpu += finished_run.cpu_s
            if finished_run.code == 0:
                break
            if finished_run.code != -signal.SIGKILL:
                with log.open("rb") as f:
                    f.seek(mark)
                    said = f.read().decode(errors="replace").strip().splitlines()
                errors = [x for x in said if x.startswith("vigil: error")] or said[-1:] or [""]
                r.failed_runs.append(
                    f"round {r.rounds}: run {kills + 1} exited {finished_run.code} after "
                    f"{kills} kills: {errors[0][:160]}"
                )
                break
        r.round_wall_s.append(time.monotonic() - t_round)
        r.round_cpu_s.append(cpu)
        r.kills_per_round.append(kills)
        try:
            samples, events = final_rows(db)
        except sqlite3.DatabaseError as exc:
            r.resume_mismatches.append(f"round {r.rounds}: the database cannot be read: {exc}")
            samples, events = ref_samples, ref_events
        if samples != ref_samples or events != ref_events:
            r.resume_mismatches.append(
                describe_mismatch(r.rounds, samples, events, ref_samples, ref_events)
            )
        if r.rounds % 5 == 0 or r.kills >= args.kills:
            console.print(f"  replay: {r.rounds} rounds, {r.runs} runs, {r.kills} kills")
        if not args.keep:
            for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.lock")):
                path.unlink(missing_ok=True)
    return r


def check_replay_kill(
    db: Path, snapshot: tuple[int, int, tuple[int, bool] | None], r: ReplayResult, when: str
) -> None:
    t_check = time.monotonic()
    if db.exists():
        problem = integrity(db)
        if problem:
            r.integrity_failures.append(f"{when}: {problem}")
    conn = connect_ro(db) if db.exists() else None
    samples = events = top_sample = top_event = 0
    state = None
    if conn is not None:
        try:
            samples, top_sample = conn.execute("SELECT count(*), max(id) FROM samples").fetchone()
            events, top_event = conn.execute("SELECT count(*), max(id) FROM events").fetchone()
            state = progress(conn)
        except sqlite3.OperationalError:  # no tables yet: killed before the schema
            pass
        finally:
            conn.close()
    # A fresh database per round, never deleted from: ids run 1..count, none missing.
    if (top_sample or 0) < snapshot[0] or (top_event or 0) < snapshot[1]:
        r.rows_lost.append(
            f"{when}: newest ids {snapshot[0]} (samples) and {snapshot[1]} (events) just "
            f"before the kill, {top_sample} and {top_event} after"
        )
    if samples != (top_sample or 0) or events != (top_event or 0):
        r.rows_lost.append(
            f"{when}: {samples} samples with ids up to {top_sample}, {events} events up to "
            f"{top_event}: rows missing"
        )
    if (state[0] if state else 0) != samples:
        r.progress_mismatches.append(f"{when}: progress row {state}, {samples} samples stored")
    if db.exists() and samples:
        conn = connect_ro(db)
        dup_s, dup_e = duplicates(conn)
        conn.close()
        if dup_s or dup_e:
            r.duplicates.append(f"{when}: {dup_s} samples, {dup_e} events twice")
    r.check_s.append(time.monotonic() - t_check)


def describe_mismatch(
    n: int, samples: list[Row], events: list[Row], ref_samples: list[Row], ref_events: list[Row]
) -> str:
    parts = [f"round {n}:"]
    if samples != ref_samples:
        first = next(
            (i for i, (a, b) in enumerate(zip(samples, ref_samples, strict=False)) if a != b),
            min(len(samples), len(ref_samples)),
        )
        parts.append(
            f"samples {len(samples)} vs {len(ref_samples)} in the reference, first difference "
            f"at row {first + 1}"
        )
    if events != ref_events:
        extra = Counter(events) - Counter(ref_events)
        missing = Counter(ref_events) - Counter(events)
        parts.append(
            f"events {len(events)} vs {len(ref_events)}: {sum(extra.values())} extra "
            f"{sorted({str(e[1]) for e in extra})}, {sum(missing.values())} missing "
            f"{sorted({str(e[1]) for e in missing})}"
        )
    return " ".join(parts)


# -- report ----------------------------------------------------------------------------------


def cell(problems: list[str] | int) -> str:
    n = problems if isinstance(problems, int) else len(problems)
    return f"[{'red' if n else 'green'}]{n}[/]"


def report(d: DaemonResult | None, rp: ReplayResult | None, console: Console) -> bool:
    checks = Table(title="vigil under kill -9: checks")
    checks.add_column("check")
    checks.add_column("daemon", justify="right")
    checks.add_column("replay", justify="right")
    na = "-"
    rows: list[tuple[str, str, str]] = [
        ("kills", f"{d.kills}" if d else na, f"{rp.kills}" if rp else na),
        (
            "integrity failures",
            cell(d.integrity_failures) if d else na,
            cell(rp.integrity_failures) if rp else na,
        ),
        ("committed rows lost", cell(d.rows_lost) if d else na, cell(rp.rows_lost) if rp else na),
        ("committed rows changed", cell(d.rows_changed) if d else na, na),
        ("duplicates", cell(d.duplicates) if d else na, cell(rp.duplicates) if rp else na),
        ("progress row != samples stored", na, cell(rp.progress_mismatches) if rp else na),
        ("resume mismatches (rounds)", na, cell(rp.resume_mismatches) if rp else na),
        (
            "runs that failed by themselves",
            cell(d.early_exits) if d else na,
            cell(rp.failed_runs) if rp else na,
        ),
        ("losses beyond one commit interval", cell(d.loss_problems) if d else na, na),
        ("stored samples never read", cell(d.unread_stored) if d else na, na),
    ]
    for row in rows:
        checks.add_row(*row)
    console.print(checks)
    failures: list[str] = []
    if d is not None:
        failures += [
            *d.integrity_failures,
            *d.rows_lost,
            *d.rows_changed,
            *d.duplicates,
            *d.early_exits,
            *d.loss_problems,
        ]
        if d.unread_stored:
            failures.append(f"daemon: {d.unread_stored} stored samples are in no recorded trace")
        lost = sum(d.lost_per_kill)
        table = Table(title="daemon: kill -9 at a random moment, then start again")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row(
            "kills (of them in start-up, before 'vigil running')",
            f"{d.kills} ({d.killed_in_startup})",
        )
        table.add_row("kill delay s (min / median / max)", spread(d.delays_s))
        table.add_row("start-up s to 'vigil running' (min / median / max)", spread(d.startup_s))
        table.add_row("samples read (recorded)", f"{d.samples_read:,}")
        table.add_row(
            "samples stored / events stored", f"{d.samples_stored:,} / {d.events_stored:,}"
        )
        table.add_row(
            "read but not committed (lost to kills)",
            f"{lost} ({100 * lost / max(1, d.samples_read):.1f} %)",
        )
        table.add_row(
            "lost per kill (mean / max)",
            f"{statistics.fmean(d.lost_per_kill or [0]):.2f} / {max(d.lost_per_kill or [0])}",
        )
        table.add_row("sample time lost per kill s (max)", f"{max(d.lost_span_s or [0.0]):.2f}")
        table.add_row("torn trace lines", f"{d.torn_lines}")
        table.add_row("wall s (all runs)", f"{d.wall_s:.0f}")
        table.add_row("CPU s of the daemons (user + system)", f"{d.cpu_s:.1f}")
        table.add_row(
            "read + check s per look (median / max)",
            f"{statistics.median(d.check_s or [0.0]):.3f} / {max(d.check_s or [0.0]):.3f}",
        )
        console.print(table)
    if rp is not None:
        failures += [
            *rp.integrity_failures,
            *rp.rows_lost,
            *rp.duplicates,
            *rp.progress_mismatches,
            *rp.resume_mismatches,
            *rp.failed_runs,
        ]
        table = Table(title="replay: kill -9 at a random moment, run again until it finishes")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("trace samples / reference events", f"{rp.samples:,} / {rp.events:,}")
        table.add_row(
            "reference replay wall s / CPU s",
            f"{rp.reference_wall_s:.1f} / {rp.reference_cpu_s:.1f}",
        )
        table.add_row("start-up wall s (a trace without samples)", f"{rp.startup_s:.2f}")
        table.add_row("rounds / runs / kills", f"{rp.rounds} / {rp.runs} / {rp.kills}")
        table.add_row(
            "kills aimed at start-up / commits / anywhere",
            f"{rp.aimed['start-up']} / {rp.aimed['commit']} / {rp.aimed['run']}",
        )
        table.add_row("kills within 0.1 s of a database write", f"{rp.near_write}")
        table.add_row("kills before the run's first commit", f"{rp.before_first_commit}")
        table.add_row(
            "kills per round (mean / max)",
            f"{statistics.fmean(rp.kills_per_round or [0]):.1f} / {max(rp.kills_per_round or [0])}",
        )
        table.add_row("round wall s (min / median / max)", spread(rp.round_wall_s))
        table.add_row("round CPU s, all its runs (min / median / max)", spread(rp.round_cpu_s))
        table.add_row(
            "check s per kill (median / max)",
            f"{statistics.median(rp.check_s or [0.0]):.3f} / {max(rp.check_s or [0.0]):.3f}",
        )
        console.print(table)
    for failure in failures[:50]:
        console.print(f"[red]FAIL[/red] {escape(failure)}", soft_wrap=True)
    if len(failures) > 50:
        console.print(f"[red]... and {len(failures) - 50} more[/red]")
    return not failures


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kills of each part")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=2, help="synthetic days for the replay")
    parser.add_argument(
        "--daemon-delay",
        type=float,
        nargs=2,
        default=[0.5, 4.0],
        metavar=("MIN_S", "MAX_S"),
        help="the daemon is killed this long after its launch (uniform)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--daemon-only", action="store_true")
    only.add_argument("--replay-only", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep databases, traces and logs here")
    args = parser.parse_args()
    # Wide enough that the tables of a run logged to a file do not wrap.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
    rng = random.Random(args.seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="vigil-crash-") as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        daemon = None
        replay = None
        try:
            if not args.replay_only:
                (where / "daemon").mkdir(exist_ok=True)
                daemon = daemon_part(args, where / "daemon", rng, console)
            if not args.daemon_only:
                (where / "replay").mkdir(exist_ok=True)
                replay = replay_part(args, where / "replay", rng, console)
        finally:
            stop_children()
        ok = report(daemon, replay, console)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
