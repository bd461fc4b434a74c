"""Cost per scored sample of the always-on tier, on this machine.

    python bench/model.py [--samples 20000]

Four numbers for one stream of generated data (a noisy daily cycle, a sample every 5
minutes): the tiny model alone per tick (batch 1, the live path) and amortised over batches
of 1,024 windows, then the whole anomaly stage per sample (model, spreads, the three ranks,
events, personalisation rounds as configured) as the live pipeline runs it, one sample at a
time, and as replay runs it, in chunks of 4,096 samples (``agent.runtime.replay.chunked``).
Thread CPU time, medians of three runs, a fresh model each run.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from pathlib import Path

import numpy as np
from model_card import update_detector

from agent.config import Config
from agent.detect.tflite import load_model
from agent.pipeline import Pipeline
from agent.runtime.replay import chunked
from agent.samples import Sample


def _series(n: int) -> list[float]:
    rng = random.Random(7)
    return [50 + 20 * math.sin(i / 144 * 2 * math.pi) + rng.gauss(0, 2) for i in range(n)]


def _median_of_3(fn) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(3):
        start = time.thread_time()
        fn()
        runs.append(time.thread_time() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument(
        "--card", type=Path, help="write the figures into this model card's detector.cost"
    )
    args = parser.parse_args()
    model = load_model("tiny")
    w = model.window
    values = np.array(_series(args.samples + w), dtype=np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(values, w)[: args.samples]
    scaled = model.scale(windows)
    n = len(scaled)

    live = _median_of_3(lambda: [model.infer(scaled[i : i + 1]) for i in range(n)]) / n
    batched = (
        _median_of_3(lambda: [model.infer(scaled[i : i + 1024]) for i in range(0, n, 1024)]) / n
    )
    single = np.concatenate([model.infer(scaled[i : i + 1]) for i in range(min(n, 2000))])
    many = model.infer(scaled[: min(n, 2000)])
    samples = [
        Sample("metric", 1_780_272_000.0 + 300 * i, {"name": "m", "value": float(v)})
        for i, v in enumerate(values[:n])
    ]

    def stage_live() -> None:
        pipeline = Pipeline(Config(), (), load_model("tiny"))
        for sample in samples:
            pipeline.feed(sample)

    def stage_batched() -> None:
        pipeline = Pipeline(Config(), (), load_model("tiny"))
        for chunk in chunked(samples):
            pipeline.feed_chunk(chunk)

    whole_live = _median_of_3(stage_live) / n
    whole_batched = _median_of_3(stage_batched) / n
    print(f"samples {n:,}, window {w}, model {model.card.size_bytes:,} B")
    print(f"tiny model, live (batch 1)      {live * 1e6:8.2f} us per sample")
    print(
        f"tiny model, batched (1,024)     {batched * 1e6:8.2f} us per sample "
        f"({live / batched:.0f}x cheaper); max |batch - single| {np.abs(single - many).max():.1e}"
    )
    print(f"whole anomaly stage, live       {whole_live * 1e6:8.2f} us per sample (pipeline.feed)")
    print(
        f"whole anomaly stage, batched    {whole_batched * 1e6:8.2f} us per sample "
        f"(replay's chunks; {whole_live / whole_batched:.1f}x cheaper)"
    )
    if args.card:
        figures = {
            "command": "python bench/model.py --card models/tiny.json",
            "model_live": round(live * 1e6, 2),
            "model_batched": round(batched * 1e6, 2),
            "stage_live": round(whole_live * 1e6, 1),
            "stage_batched": round(whole_batched * 1e6, 1),
        }
        update_detector(args.card, "cost_us_per_sample", figures)


if __name__ == "__main__":
    main()
