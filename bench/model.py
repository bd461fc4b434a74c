"""Cost per scored sample of the always-on tier, on this machine.

    python bench/model.py [--samples 20000]

Three numbers for one stream of generated data (a noisy daily cycle): the tiny model alone
per tick (batch 1, the live path), the tiny model amortised over batches of 1,024 windows
(the replay path), and the whole anomaly stage per sample (model, level, likelihood,
events) as the live pipeline runs it. Thread CPU time, medians of three runs.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time

import numpy as np

from agent.config import Config
from agent.detect.tflite import load_model
from agent.pipeline import Pipeline
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
    p99 = float(model.card.thresholds["score_p99_normal"])

    def stage() -> None:
        pipeline = Pipeline(Config(), (), model, p99)
        for i, v in enumerate(values[:n]):
            pipeline.feed(Sample("metric", 1_780_272_000.0 + 300 * i, {"name": "m", "value": v}))

    whole = _median_of_3(stage) / n
    print(f"samples {n:,}, window {w}, model {model.card.size_bytes:,} B")
    print(f"tiny model, live (batch 1)      {live * 1e6:8.2f} us per sample")
    print(
        f"tiny model, batched (1,024)     {batched * 1e6:8.2f} us per sample "
        f"({live / batched:.0f}x cheaper); max |batch - single| {np.abs(single - many).max():.1e}"
    )
    print(
        f"whole anomaly stage, live       {whole * 1e6:8.2f} us per sample "
        f"(pipeline.feed: model, level, likelihood, events)"
    )


if __name__ == "__main__":
    main()
