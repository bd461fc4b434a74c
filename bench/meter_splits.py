"""What each stage of a live sample is charged, metered by a CPU-clock lap at every stage
against the pipeline's splits (``power/meter.py``), and what the metering itself costs.

Two pipelines are warmed alike on the first 14 days of a generated laptop trace (in
replay's chunks), one metered with a lap at every stage (a split made a lap), the other as
the daemon meters it (its stages split between the loop's laps); the next ``--samples``
samples go to both one at a time, each between a ``source`` and a ``storage`` lap as in
the daemon's loop, in alternating blocks of ``--block``. Prints each stage's CPU
microseconds a sample under both: the splits share the CPU clock's reading by wall time, so
the two columns should agree but for the metering's own cost and its noise.

    python bench/meter_splits.py [--samples 40000] [--block 250] [--warm-days 14]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from live_compare import LIVE_DAYS, feed_metered, in_turns

from agent.config import Config
from agent.demo import write_synthetic_trace
from agent.detect.tflite import load_or_explain
from agent.pipeline import Pipeline
from agent.power.meter import PowerMeter
from agent.runtime.replay import chunked
from agent.runtime.trace import ReadCounts, read_trace
from agent.samples import Sample


class LapEveryStage(PowerMeter):
    """The meter before splits: each stage's end read on the thread's CPU clock."""

    def split(self, name: str, calls: int = 1) -> None:
        self.lap(name, calls)


def warmed(samples: list[Sample], meter: PowerMeter) -> Pipeline:
    pipeline = Pipeline(Config(), (), load_or_explain())
    for chunk in chunked(iter(samples)):
        pipeline.feed_chunk(chunk)
    pipeline.meter = meter
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--warm-days", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "laptop.jsonl"
        write_synthetic_trace(trace, days=args.warm_days + LIVE_DAYS)
        samples = list(read_trace([trace], ReadCounts()))
    until = samples[0].t + args.warm_days * 86_400.0
    warm = [s for s in samples if s.t < until]
    live = samples[len(warm) : len(warm) + args.samples]
    pipelines = {"laps": warmed(warm, LapEveryStage()), "splits": warmed(warm, PowerMeter())}
    charged: dict[str, dict[str, float]] = {label: {} for label in pipelines}
    labels = list(pipelines)
    for label, start, end in in_turns(len(live), args.block, labels):
        pipeline = pipelines[label]
        for name, cost in feed_metered(pipeline, pipeline.meter, live[start:end]).items():
            charged[label][name] = charged[label].get(name, 0.0) + cost.cpu_s
    n = len(live)
    stages = sorted(
        set(charged["laps"]) | set(charged["splits"]), key=lambda k: -charged["laps"].get(k, 0.0)
    )
    print(f"live samples after {args.warm_days} days: {n:,}, in blocks of {args.block}")
    print(f"{'stage':<12} {'laps us':>9} {'splits us':>9}")
    for name in stages:
        each = [charged[label].get(name, 0.0) / n * 1e6 for label in labels]
        print(f"{name:<12} {each[0]:9.2f} {each[1]:9.2f}")
    totals = [sum(charged[label].values()) / n * 1e6 for label in labels]
    print(f"{'total':<12} {totals[0]:9.2f} {totals[1]:9.2f}")


if __name__ == "__main__":
    main()
