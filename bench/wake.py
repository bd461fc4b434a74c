"""What one wake of the larger model costs here, and what it does to the daemon's memory.

1. The default model (SmolLM2-135M-Instruct through llama.cpp, the ``llm`` extra) asked the
   demo runaway's facts ``--runs`` times, each in a fresh child process as the daemon does:
   wall and CPU seconds and peak RSS of the child (from ``wait4``), tokens in and out.
   Then the same with the model kept warm (``keep_warm_s``): the second question's cost.
2. A real ``vigil run`` daemon with a rule that wakes the model 15 s after it starts: its
   resident memory sampled every 0.2 s before, during and after the wake (the model lives
   in the child, so the daemon's should not move).

    python bench/wake.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from agent.clock import SystemClock
from agent.config import EscalationConfig
from agent.escalation.backends import Job, make_backend
from agent.escalation.prompt import messages

FACTS = [
    "At 14:00 UTC on Monday, the CPU use reached 98 %, usually 0 % to 28 %.",
    "The process ffmpeg used 194 % CPU (before: 0 %).",
    "The temperature reached 79 °C, usually 40 °C to 52 °C.",
]

DAEMON_CONFIG = """
[sensors.system]
interval_s = 1.0
[sensors.battery]
enabled = false
[sensors.location]
source = "none"
[sensors.apps]
interval_s = 1.0
[escalation]
backend = "llama_cpp"
debounce_s = 1.0
[[rules]]
name = "first"
stream = "system.mem_used_pct"
above = 0.0
for_s = 15.0
action = "wake"
[[rules]]
name = "second"
stream = "system.mem_used_pct"
above = 0.0
for_s = 45.0
action = "wake"
[[rules]]
name = "third"
stream = "system.mem_used_pct"
above = 0.0
for_s = 75.0
action = "wake"
"""


def one_wake(runs: int) -> None:
    clock = SystemClock()
    backend, about = make_backend(EscalationConfig(backend="llama_cpp"), clock)
    if backend is None:
        sys.exit(f"no model: {about}")
    print(f"model: {about}")
    job = Job(1, messages(FACTS))
    costs = []
    for _ in range(runs):
        answer = backend.ask(job)
        assert answer.cost is not None and answer.error is None, answer
        costs.append(answer.cost)
    wall = statistics.median(c.wall_s for c in costs)
    cpu = statistics.median(c.cpu_s for c in costs)
    rss = max(c.peak_rss_kb or 0 for c in costs) / 1024
    tin, tout = costs[0].tokens_in, costs[0].tokens_out
    print(
        f"cold wake (a new child each time), median of {runs}: {wall:.2f} s wall, "
        f"{cpu:.2f} CPU s, peak RSS {rss:.0f} MB, {tin} tokens in, {tout} out "
        f"({((tin or 0) + (tout or 0)) / wall:.0f} tokens/s all told, start-up and load "
        f"included); answer: {answer.text!r}"
    )
    warm, _ = make_backend(EscalationConfig(backend="llama_cpp", keep_warm_s=60.0), clock)
    assert warm is not None
    first, second = warm.ask(job), warm.ask(job)
    warm.release()
    assert first.cost is not None and second.cost is not None
    print(
        f"kept warm: first {first.cost.wall_s:.2f} s / {first.cost.cpu_s:.2f} CPU s, "
        f"second {second.cost.wall_s:.2f} s / {second.cost.cpu_s:.2f} CPU s "
        f"({(second.cost.tokens_out or 0) / second.cost.wall_s:.1f} answer tokens/s)"
    )


def daemon_memory() -> None:
    """Three wakes, 30 s apart, of a real daemon: its RSS just before each and 20 s after."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(DAEMON_CONFIG)
        init = [sys.executable, "-m", "agent", "--config", str(cfg), "--db", f"{tmp}/v.db", "init"]
        subprocess.run(init, check=True, capture_output=True)
        argv = [*init[:-1], "run"]
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        me = psutil.Process(proc.pid)
        samples: list[tuple[float, float, float]] = []  # t, daemon RSS, its children's RSS
        start = time.monotonic()
        try:
            while time.monotonic() - start < 110.0:
                kids = [c for c in me.children(recursive=True) if _alive(c)]
                kids_mb = sum(_rss(c) for c in kids) / 2**20
                samples.append((time.monotonic() - start, me.memory_info().rss / 2**20, kids_mb))
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(30)
    wakes = _spans([s[0] for s in samples if s[2] > 0])
    if not wakes:
        sys.exit("the daemon never woke its model")
    print(
        f"daemon RSS around {len(wakes)} wakes (the model's child up to "
        f"{max(s[2] for s in samples):.0f} MB):"
    )
    for t0, t1 in wakes:
        before = max(s[1] for s in samples if t0 - 3.0 <= s[0] < t0)
        during = max(s[1] for s in samples if t0 <= s[0] <= t1)
        after = [s[1] for s in samples if t1 + 15.0 <= s[0] <= t1 + 20.0]
        print(
            f"  wake at {t0:5.1f} s ({t1 - t0:.1f} s): before {before:.1f} MB, during "
            f"{during:.1f} MB, 15-20 s after {max(after) if after else float('nan'):.1f} MB"
        )


def _spans(times: list[float]) -> list[tuple[float, float]]:
    """Runs of times less than a second apart."""
    spans: list[tuple[float, float]] = []
    for t in times:
        if spans and t - spans[-1][1] < 1.0:
            spans[-1] = (spans[-1][0], t)
        else:
            spans.append((t, t))
    return spans


def _rss(p: psutil.Process) -> int:
    try:
        return int(p.memory_info().rss)
    except psutil.Error:
        return 0


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    one_wake(args.runs)
    daemon_memory()


if __name__ == "__main__":
    main()
