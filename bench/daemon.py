"""What the daemon itself costs: CPU and memory of a real ``vigil run`` at the default config.

Starts ``vigil run`` as a user would, in a temporary HOME with the default config (``vigil
init``) and two fences (``vigil fences add``), lets it settle, then measures ``--windows``
windows of ``--minutes`` each and stops it with SIGTERM. Per window and overall:

- CPU time as a share of one core: the process's utime + stime from ``/proc/<pid>/stat``
  (clock ticks; threads that ended included), and the sum of its threads' run time from
  ``/proc/<pid>/task/*/schedstat`` (nanoseconds). CPU time, not wall time, so other work on
  the machine does not count; the ticks are 10 ms, so short windows are coarse;
- the same per thread, by the names the daemon gives its threads (``vigil-poll`` runs the
  sensors, ``vigil-sched`` is APScheduler's, ``vigil-escalation`` waits for wakes, the main
  thread runs the pipeline and the database; an unnamed one is a library's, e.g. OpenBLAS's),
  with each thread's wake-ups per minute (voluntary context switches: a thread that polls
  shows here even when its CPU is small);
- resident memory at the window's end (VmRSS) and the peak so far (VmHWM).

``--wake`` adds a rule that wakes the larger model once, early in the first window (the
``llm`` extra, as ``vigil run`` finds it), and reports the daemon's resident memory before,
around (the daemon gathers the context, then the model runs in a child process) and after
the wake; its CPU then includes the wake's own work in the daemon, not the child's.

    python bench/daemon.py [--windows 3] [--minutes 3] [--settle-s 30] [--wake]
    python bench/daemon.py --windows 1 --minutes 0.5 --settle-s 5     # a smoke run
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from children import vigil_argv
from rich.console import Console
from rich.table import Table

from agent.config_template import TEMPLATE

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
FENCES = [
    ["home", "--lat", "46.0512", "--lon", "14.5061", "--radius-m", "150"],
    ["work", "--lat", "46.0734", "--lon", "14.4802", "--radius-m", "200", "--dwell-s", "600"],
]


@dataclass
class Reading:
    """One look at the daemon: CPU seconds (process ticks; each thread's run time), memory."""

    t: float
    cpu_s: float
    threads: dict[int, tuple[str, float, int]]  # tid -> (name, run time s, wake-ups)
    rss_mb: float
    hwm_mb: float


@dataclass
class Window:
    wall_s: float
    cpu_s: float
    threads_s: float
    rss_mb: float
    hwm_mb: float
    per_thread: dict[str, float] = field(default_factory=dict)
    wakeups: dict[str, int] = field(default_factory=dict)


def read_daemon(pid: int) -> Reading:
    with open(f"/proc/{pid}/stat", "rb") as f:
        line = f.read()
    fields = line[line.rfind(b")") + 2 :].split()
    cpu_s = (int(fields[11]) + int(fields[12])) * TICK_S
    threads: dict[int, tuple[str, float, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                run_ns = int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                sleeps = [int(r.split()[1]) for r in f if r.startswith("voluntary_ctxt_switches:")]
        except (OSError, ValueError, IndexError):
            continue  # ended meanwhile
        if int(tid) == pid:
            name = f"main ({name})"
        elif not name.startswith("vigil-"):
            name = f"unnamed ({name})"
        threads[int(tid)] = (name, run_ns / 1e9, sleeps[0] if sleeps else 0)
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for row in f:
            key, _, value = row.partition(":")
            status[key] = value.strip()
    return Reading(
        time.monotonic(),
        cpu_s,
        threads,
        int(status["VmRSS"].split()[0]) / 1024,
        int(status["VmHWM"].split()[0]) / 1024,
    )


def window(a: Reading, b: Reading) -> Window:
    """What happened between two readings; threads of one name are summed (``name x2``)."""
    counts: dict[str, int] = {}
    for name, _, _ in b.threads.values():
        counts[name] = counts.get(name, 0) + 1
    per_thread: dict[str, float] = {}
    wakeups: dict[str, int] = {}
    for tid, (name, run_s, sleeps) in b.threads.items():
        label = f"{name} x{counts[name]}" if counts[name] > 1 else name
        _, run_before, sleeps_before = a.threads.get(tid, ("", 0.0, 0))
        per_thread[label] = per_thread.get(label, 0.0) + run_s - run_before
        wakeups[label] = wakeups.get(label, 0) + sleeps - sleeps_before
    threads_s = sum(per_thread.values())
    return Window(b.t - a.t, b.cpu_s - a.cpu_s, threads_s, b.rss_mb, b.hwm_mb, per_thread, wakeups)


def children_rss_mb(pid: int) -> float:
    """Resident memory of the daemon's child processes (the larger model's), in MB."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = f.read().split()
        except OSError:
            continue
        for kid in kids:
            try:
                with open(f"/proc/{kid}/status") as f:
                    for row in f:
                        if row.startswith("VmRSS:"):
                            total += int(row.split()[1]) / 1024
            except OSError:
                continue
    return total


def wake_config(fire_after_s: float) -> str:
    """The default config with one rule that wakes the larger model once, after
    ``fire_after_s`` of sample time (memory is always above 0 %: it fires once and never
    re-arms), and a 1 s debounce so the wake follows at once."""
    text = TEMPLATE.replace("debounce_s = 300.0", "debounce_s = 1.0")
    assert text != TEMPLATE, "the template's debounce_s moved"
    return text + (
        "\n[[rules]]\n"
        'name = "bench_wake"\n'
        'stream = "system.mem_used_pct"\n'
        "above = 0.0\n"
        f"for_s = {fire_after_s:.1f}\n"
        'action = "wake"\n'
    )


def run(args: argparse.Namespace) -> None:
    console = Console(highlight=False)
    vigil = vigil_argv()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        home = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "VIGIL_"))}
        env.update(HOME=str(home), LC_ALL="C.UTF-8")
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(k, None)

        def call(*argv: str) -> None:
            subprocess.run([*vigil, *argv], env=env, check=True, capture_output=True)

        call("init")
        config = home / ".config" / "vigil" / "config.toml"
        if args.wake:
            config.write_text(wake_config(args.settle_s + 20.0))
        for fence in FENCES:
            call("fences", "add", *fence)
        log = home / "daemon.log"
        with open(log, "wb") as err:
            daemon = subprocess.Popen([*vigil, "run"], env=env, stderr=err)
        try:
            measure(daemon.pid, log, args, console)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                code = daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
                code = daemon.wait()
            if code != 0:
                console.print(log.read_text()[-3000:])
                sys.exit(f"vigil run exited {code}")


def measure(pid: int, log: Path, args: argparse.Namespace, console: Console) -> None:
    start = time.monotonic()
    while b"vigil running" not in log.read_bytes():
        if time.monotonic() - start > 120 or not Path(f"/proc/{pid}").exists():
            sys.exit("the daemon did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.1)
    ready = read_daemon(pid)
    console.print(
        f"vigil run ready after {ready.t - start:.1f} s ({ready.cpu_s:.2f} CPU s for start-up): "
        f"RSS {ready.rss_mb:.1f} MB, peak {ready.hwm_mb:.1f} MB; "
        f"settling {args.settle_s:g} s"
    )
    time.sleep(args.settle_s)
    readings = [read_daemon(pid)]
    wake_rss: list[tuple[float, float, float]] = []  # t, daemon RSS, children RSS
    for _ in range(args.windows):
        end = readings[-1].t + args.minutes * 60.0
        while (now := time.monotonic()) < end:
            if args.wake:
                rss = read_daemon(pid).rss_mb
                wake_rss.append((now, rss, children_rss_mb(pid)))
                time.sleep(min(0.5, end - now))
            else:
                time.sleep(end - now)
        readings.append(read_daemon(pid))
    windows = [window(a, b) for a, b in zip(readings, readings[1:], strict=False)]
    report(windows, window(readings[0], readings[-1]), console)
    if args.wake:
        report_wake(wake_rss, readings[0], readings[-1], console)


def pct(cpu_s: float, wall_s: float) -> str:
    return f"{100.0 * cpu_s / wall_s:.3f}"


def report(windows: list[Window], overall: Window, console: Console) -> None:
    table = Table(title="vigil run: CPU (% of one core) and memory, per window")
    for column in ("window", "wall s", "CPU s", "CPU %", "threads' CPU %", "VmRSS MB", "VmHWM MB"):
        table.add_column(column, justify="right")
    rows = [(str(i), w) for i, w in enumerate(windows, start=1)] + [("all", overall)]
    for label, w in rows:
        table.add_row(
            label,
            f"{w.wall_s:.0f}",
            f"{w.cpu_s:.2f}",
            pct(w.cpu_s, w.wall_s),
            pct(w.threads_s, w.wall_s),
            f"{w.rss_mb:.1f}",
            f"{w.hwm_mb:.1f}",
        )
    console.print(table)
    threads = Table(
        title="CPU per thread (% of one core, from each thread's run time), and its wake-ups "
        "per minute over all windows (voluntary context switches)"
    )
    threads.add_column("thread")
    for i in range(1, len(windows) + 1):
        threads.add_column(f"window {i}", justify="right")
    threads.add_column("all", justify="right")
    threads.add_column("wake-ups/min", justify="right")
    names = sorted(overall.per_thread, key=lambda n: -overall.per_thread[n])
    for name in names:
        cells = [pct(w.per_thread.get(name, 0.0), w.wall_s) for w in windows]
        per_min = 60.0 * overall.wakeups.get(name, 0) / overall.wall_s
        threads.add_row(
            name, *cells, pct(overall.per_thread[name], overall.wall_s), f"{per_min:.1f}"
        )
    console.print(threads)


def report_wake(
    samples: list[tuple[float, float, float]], first: Reading, last: Reading, console: Console
) -> None:
    """RSS before the wake (the first window's start), around it (the daemon gathers the
    context and diagnoses before the child starts, so from 15 s before the child on), 10 s
    after the child ended, and at the end."""
    child = [s for s in samples if s[2] > 0]
    if not child:
        console.print("--wake: no child process was seen: did the larger model run? (vigil doctor)")
        return
    t0, t1 = child[0][0], child[-1][0]
    around = [s[1] for s in samples if t0 - 15.0 <= s[0] <= t1]
    after = [s[1] for s in samples if s[0] > t1 + 10.0]
    console.print(
        f"--wake: daemon VmRSS before {first.rss_mb:.1f} MB, around the wake up to "
        f"{max(around):.1f} MB (the model's child up to {max(s[2] for s in child):.0f} MB, "
        f"for {t1 - t0:.1f} s), 10 s after it {after[0] if after else float('nan'):.1f} MB, "
        f"at the end {last.rss_mb:.1f} MB (peak {last.hwm_mb:.1f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of each window")
    parser.add_argument(
        "--settle-s", type=float, default=30.0, help="seconds after start-up not measured"
    )
    parser.add_argument("--wake", action="store_true", help="wake the larger model once")
    args = parser.parse_args()
    run(args)


if __name__ == "__main__":
    main()
