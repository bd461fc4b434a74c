"""Does the larger model get woken for the right things, and told the right cause?

Generates ``bench/scenario.py``'s laptop trace (two weeks, 18 incidents of nine causes, each
with its culprit, and normal days), replays it through vigil with the default config, and
prints, per incident, the first wake within 15 minutes of its start and what it named:

* reached: a ``wake.done`` within 15 minutes of the incident's start (goal >= 95 %);
* right: a wake in that time names the incident's cause and culprit (goal >= 90 %); a place
  is named right when the learned place lies within 500 m of where the trip went;
* wakes per normal day (no incident that day; goal <= 2), and wakes outside any incident.

With ``--wake`` the larger model (the configured backend; SmolLM2 by default) answers each
wake: its cost per wake, how often its sentence passed the check, and the tiering's saving
(the measured cost per wake times the wakes taken, against the same model on every 10 s tick
of the trace). ``--demo`` does the same on ``vigil demo``'s day (one incident: ffmpeg's CPU
runaway at 14:00). ``--per-device`` gives the laptop's system samples one interface's and
one disk's rates beside the totals (13 streams, not 9), as a real laptop with
``per_device = true``, the default, reports them.

    python bench/escalation.py [--days 14] [--seed 1] [--wake] [--demo] [--keep DIR]
        [--per-device]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import scenario  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agent import synthetic  # noqa: E402
from agent.clock import SystemClock  # noqa: E402
from agent.config import Config  # noqa: E402
from agent.demo import demo_fences, write_synthetic_trace  # noqa: E402
from agent.detect.places import distance_m  # noqa: E402
from agent.escalation.backends import make_backend  # noqa: E402
from agent.memory.db import open_engine  # noqa: E402
from agent.memory.store import MemoryStore  # noqa: E402
from agent.memory.wakes import WakeStore  # noqa: E402
from agent.runtime.replay import replay_files  # noqa: E402
from agent.runtime.trace import TraceWriter  # noqa: E402
from agent.samples import Event  # noqa: E402

REACH_S = 15 * 60.0
#: A wake this long before an incident's start up to this long after its end is about it.
AROUND_S = (300.0, 1800.0)
PLACE_MATCH_M = 500.0
TICK_S = 10.0  # the system sensor's interval: the tick a model "always on" would run at


@dataclass(frozen=True)
class Verdict:
    incident: scenario.Incident
    first: Event | None
    right: bool


def judge(
    events: list[Event], incidents: list[scenario.Incident], places: dict[str, tuple[float, float]]
) -> list[Verdict]:
    wakes = [e for e in events if e.kind == "wake.done"]
    verdicts = []
    for inc in incidents:
        in_time = [w for w in wakes if inc.start_t <= w.t <= inc.start_t + REACH_S]
        right = any(w.data["cause"] == inc.cause and _culprit_ok(w, inc, places) for w in in_time)
        verdicts.append(Verdict(inc, in_time[0] if in_time else None, right))
    return verdicts


def _culprit_ok(
    wake: Event, inc: scenario.Incident, places: dict[str, tuple[float, float]]
) -> bool:
    culprit = wake.data.get("culprit")
    if inc.culprit_kind == "place":
        where = places.get(str(culprit))
        return (
            where is not None
            and inc.lat is not None
            and inc.lon is not None
            and (distance_m(where[0], where[1], inc.lat, inc.lon) <= PLACE_MATCH_M)
        )
    return bool(culprit == inc.culprit)


def _replay(trace: Path, db: Path, wake: bool, fences: bool = False) -> tuple[float, float]:
    """Replay into ``db``; returns (wall s, CPU s of this process)."""
    backend = None
    if wake:
        backend, about = make_backend(Config().escalation, SystemClock())
        print(f"larger model: {about}")
    began, cpu = time.perf_counter(), time.process_time()
    replay_files(
        [trace], Config(), db=db, backend=backend, fences=demo_fences() if fences else None
    )
    return time.perf_counter() - began, time.process_time() - cpu


def _stored(db: Path) -> tuple[list[Event], dict[str, tuple[float, float]], list[dict[str, Any]]]:
    engine = open_engine(db)
    store = MemoryStore(engine)
    events = store.events()
    places = {p.name: (p.lat, p.lon) for p in store.load_state()["places"]}
    findings = WakeStore(engine).findings()
    engine.dispose()
    return events, places, findings


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%a %m-%d %H:%M")


def report(
    verdicts: list[Verdict],
    events: list[Event],
    normal: list[int],
    start_t: float,
    days: int,
) -> dict[str, Any]:
    table = Table(title="incidents and the first wake within 15 minutes")
    for column in ("start (UTC)", "cause", "culprit", "woken after", "wake said", "right"):
        table.add_column(column)
    for v in verdicts:
        said = "-" if v.first is None else f"{v.first.data['cause']}: {v.first.data['culprit']}"
        after = "-" if v.first is None else f"{(v.first.t - v.incident.start_t) / 60:.1f} min"
        table.add_row(
            _when(v.incident.start_t),
            v.incident.cause,
            v.incident.culprit,
            after,
            said,
            "yes" if v.right else "NO",
        )
    Console(width=120).print(table)
    wakes = [e for e in events if e.kind == "wake.done"]
    suppressed = [e for e in events if e.kind == "wake.suppressed"]
    per_day = [sum(1 for w in wakes if int((w.t - start_t) // 86400) == d) for d in range(days)]
    outside = [
        w
        for w in wakes
        if not any(
            v.incident.start_t - AROUND_S[0] <= w.t <= v.incident.end_t + AROUND_S[1]
            for v in verdicts
        )
    ]
    n = len(verdicts)
    why = Counter(str(e.data["reason"]) for e in suppressed)
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(why.items())) or "none"
    figures = {
        "incidents": n,
        "reached_pct": 100.0 * sum(v.first is not None for v in verdicts) / n,
        "right_pct": 100.0 * sum(v.right for v in verdicts) / n,
        "wakes": len(wakes),
        "suppressed": len(suppressed),
        "suppressed_by_reason": dict(why),
        "wakes_per_day": per_day,
        "normal_days": normal,
        "wakes_per_normal_day": statistics.mean(per_day[d] for d in normal) if normal else None,
        "wakes_outside_incidents": len(outside),
    }
    print(
        f"reached within 15 min: {figures['reached_pct']:.0f} % (goal >= 95); right cause and "
        f"culprit: {figures['right_pct']:.0f} % (goal >= 90)"
    )
    print(
        f"wakes: {len(wakes)} ({len(suppressed)} triggers suppressed: {reasons}); per day "
        f"{per_day}; "
        f"per normal day {figures['wakes_per_normal_day']} (days {normal}; goal <= 2); "
        f"outside any incident: {len(outside)}"
    )
    return figures


def costs(findings: list[dict[str, Any]], ticks: int, tier_cpu_s: float) -> dict[str, Any]:
    """The larger model's cost per wake and the tiering's saving."""
    ran = [f for f in findings if f["cpu_s"] is not None]
    if not ran:
        return {}
    cpu = statistics.mean(f["cpu_s"] for f in ran)
    wall = statistics.mean(f["wall_s"] for f in ran)
    rss = max(f["peak_rss_kb"] or 0 for f in ran) / 1024
    tokens = sum((f["tokens_out"] or 0) for f in ran)
    kept = sum(f["text_source"] == "model" for f in ran)
    failed = sum(f["status"] == "failed" for f in ran)
    tiered = len(findings) * cpu + tier_cpu_s
    always = ticks * cpu
    figures = {
        "wakes_run": len(ran),
        "cpu_s_per_wake": cpu,
        "wall_s_per_wake": wall,
        "peak_rss_mb": rss,
        "tokens_per_s": tokens / sum(f["wall_s"] for f in ran),
        "text_kept": kept,
        "failed": failed,
        "tiered_cpu_s": tiered,
        "always_on_cpu_s": always,
        "saving_ratio": always / tiered,
    }
    print(
        f"per wake: {wall:.2f} s wall, {cpu:.2f} CPU s, peak RSS {rss:.0f} MB, "
        f"{figures['tokens_per_s']:.1f} tokens/s (answers over wall time); the model's sentence "
        f"kept in {kept} of {len(ran)} wakes, {failed} failed"
    )
    print(
        f"tiering: {len(findings)} wakes x {cpu:.2f} CPU s + the replay's own {tier_cpu_s:.0f}"
        f" CPU s (reading, the always-on tier, storage) = {tiered:.0f} CPU s, against the model"
        f" on every {TICK_S:g} s tick "
        f"({ticks:,} ticks x {cpu:.2f} CPU s = {always:,.0f} CPU s): {always / tiered:,.0f}x less"
    )
    return figures


def run_scenario(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    name = f"scenario-{args.days}d-{args.seed}" + ("-per-device" if args.per_device else "")
    trace, db = where / f"{name}.jsonl.gz", where / f"{name}.db"
    saved = where / f"{name}.incidents.json"
    if trace.exists() and saved.exists():  # kept from an earlier run (--keep)
        incidents = [scenario.Incident(**i) for i in json.loads(saved.read_text())]
    else:
        began = time.perf_counter()
        samples, incidents = scenario.generate(args.days, args.seed)
        with TraceWriter(trace, created=scenario.START_T, host="scenario", source="bench") as w:
            for sample in samples:
                w.write(scenario.with_device_rates(sample) if args.per_device else sample)
        saved.write_text(json.dumps([asdict(i) for i in incidents]))
        print(
            f"scenario: {len(samples):,} samples, {len(incidents)} incidents, "
            f"generated in {time.perf_counter() - began:.0f} s"
        )
    db.unlink(missing_ok=True)
    wall, cpu = _replay(trace, db, args.wake)
    print(f"replay: {wall:.0f} s wall, {cpu:.0f} CPU s")
    events, places, findings = _stored(db)
    normal = scenario.normal_days(args.days, incidents)
    figures = report(judge(events, incidents, places), events, normal, scenario.START_T, args.days)
    if args.wake:
        ticks = int(args.days * 86400 / TICK_S)
        # This process's CPU: the whole replay (reading, the always-on tier, storage), without
        # the model's children, which are measured apart.
        figures["cost"] = costs(findings, ticks, cpu)
    return figures


def run_demo(args: argparse.Namespace, where: Path) -> dict[str, Any]:
    trace, db = where / "demo.jsonl.gz", where / "demo.db"
    write_synthetic_trace(trace)
    db.unlink(missing_ok=True)
    _, cpu = _replay(trace, db, args.wake, fences=True)
    events, places, findings = _stored(db)
    runaway = scenario.Incident(
        synthetic.START_T + synthetic.RUNAWAY[0],
        synthetic.START_T + synthetic.RUNAWAY[1],
        "cpu_runaway",
        "ffmpeg",
        "process",
        "vigil demo's runaway",
    )
    print("\nvigil demo's day")
    figures = report(judge(events, [runaway], places), events, [], synthetic.START_T, 1)
    if args.wake:
        figures["cost"] = costs(findings, int(86400 / TICK_S), cpu)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wake", action="store_true", help="also run the larger model")
    parser.add_argument("--demo", action="store_true", help="also on vigil demo's day")
    parser.add_argument("--keep", type=Path, help="keep traces and databases here")
    parser.add_argument(
        "--per-device",
        action="store_true",
        help="the laptop's system samples with one interface's and one disk's rates too",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        figures = {"scenario": run_scenario(args, where)}
        if args.demo:
            figures["demo"] = run_demo(args, where)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
