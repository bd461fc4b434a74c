"""Does on-device personalisation cut false alarms without missing incidents?

    python bench/personalise.py [--days 6] [--seeds 1 2 3]

Two answers, both printed. **The model's own verdict**: after ``days - 1`` normal days fed
through the pipeline with ``personalise = true``, the shipped and the personalised weights
score every window of the last normal day and of each incident; a window is flagged when its
error exceeds the card's ``score_p99_normal`` (the shipped model's threshold from held-out
generated data). **The whole tier**: the events of the full trace with personalisation on
and off.

The trace is ``agent.synthetic.routine``: one metric a minute whose normal level shifts
twice a day (10 -> 40 MB/s at 08:00, back at 20:00) with a backup burst every ten minutes,
and four incidents on the last day (a runaway, a stuck reading, a spike, a missing backup).
Each seed is fed through the pipeline twice, with ``personalise`` on and off (the default);
an ``anomaly.start`` counts for an incident when it falls from 5 minutes before its start to
30 minutes after its end, and as a false alarm otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from rich.console import Console
from rich.table import Table

from agent import synthetic
from agent.config import Config
from agent.detect.tflite import TinyModel, load_or_explain
from agent.pipeline import Pipeline


@dataclasses.dataclass
class Outcome:
    false_alarms: list[float]  # hours since the trace's start
    caught: list[bool]  # per incident
    rounds: int
    kept: int


def run(days: int, seed: int, personalise: bool) -> Outcome:
    config = Config()
    anomaly = dataclasses.replace(config.anomaly, personalise=personalise)
    pipeline = Pipeline(dataclasses.replace(config, anomaly=anomaly), (), load_or_explain())
    last_day = synthetic.START_T + (days - 1) * synthetic.DAY_S
    windows = [
        (last_day + a - 300.0, last_day + b + 1800.0) for a, b in synthetic.ROUTINE_INCIDENTS
    ]
    starts = [
        e.t
        for sample in synthetic.routine(days, seed)
        for e in pipeline.feed(sample).events
        if e.kind == "anomaly.start"
    ]
    caught = [any(a <= t <= b for t in starts) for a, b in windows]
    false = [
        (t - synthetic.START_T) / 3600 for t in starts if not any(a <= t <= b for a, b in windows)
    ]
    assert pipeline.anomaly is not None
    personaliser = pipeline.anomaly.personaliser
    rounds = personaliser.rounds if personaliser else 0
    kept = personaliser.saved.rounds if personaliser and personaliser.saved else 0
    return Outcome(false, caught, rounds, kept)


@dataclasses.dataclass
class ModelVerdict:
    normal_flagged: float  # fraction of the last normal day's windows above the threshold
    incidents_flagged: list[bool]  # per incident: any of its windows above it


def model_verdicts(days: int, seed: int) -> tuple[ModelVerdict, ModelVerdict, int]:
    """(shipped, personalised, rounds kept): the model's errors against its card threshold."""
    config = Config()
    anomaly = dataclasses.replace(config.anomaly, personalise=True)
    pipeline = Pipeline(dataclasses.replace(config, anomaly=anomaly), (), load_or_explain())
    for sample in synthetic.routine(days - 1, seed):  # the same normal days as the full trace
        pipeline.feed(sample)
    assert pipeline.anomaly is not None and pipeline.anomaly.personaliser is not None
    trained, shipped = pipeline.anomaly.personaliser.model, load_or_explain()
    assert isinstance(trained, TinyModel) and shipped is not None
    threshold = shipped.card.thresholds["score_p99_normal"]
    values = np.array([float(s.data["value"]) for s in synthetic.routine(days, seed)])
    w = shipped.window
    windows = np.lib.stride_tricks.sliding_window_view(values, w)  # row i ends at i + w - 1
    last = (days - 1) * 1440  # the last day's first sample (one a minute)
    normal = np.arange(last - 1440, last) - (w - 1)
    incidents = [
        np.arange(last + int(a / 60), last + int(b / 60) + w) - (w - 1)
        for a, b in synthetic.ROUTINE_INCIDENTS
    ]
    verdicts = []
    for model in (shipped, trained):

        def flagged(rows: np.ndarray, model: TinyModel = model) -> np.ndarray:
            return model.infer(model.scale(windows[rows])) > threshold

        verdicts.append(
            ModelVerdict(float(flagged(normal).mean()), [bool(flagged(r).any()) for r in incidents])
        )
    saved = pipeline.anomaly.personaliser.saved
    return verdicts[0], verdicts[1], saved.rounds if saved else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    model_table = Table(title="the model's own verdict at its card threshold (score_p99_normal)")
    for column in ("seed", "rounds kept", "weights", "normal windows flagged", "incidents flagged"):
        model_table.add_column(column)
    for seed in args.seeds:
        shipped, personal, kept = model_verdicts(args.days, seed)
        for label, v in (("shipped", shipped), ("personalised", personal)):
            model_table.add_row(
                str(seed),
                str(kept),
                label,
                f"{v.normal_flagged:.1%}",
                f"{sum(v.incidents_flagged)}/{len(v.incidents_flagged)}",
            )
    Console().print(model_table)
    table = Table(title=f"routine trace, {args.days} days, incidents on the last day")
    for column in ("seed", "personalised", "rounds (last kept)", "false alarms at (h)", "caught"):
        table.add_column(column)
    totals = {False: [0, 0], True: [0, 0]}
    for seed in args.seeds:
        for personalise in (False, True):
            out = run(args.days, seed, personalise)
            totals[personalise][0] += len(out.false_alarms)
            totals[personalise][1] += sum(out.caught)
            table.add_row(
                str(seed),
                "yes" if personalise else "no",
                f"{out.rounds} ({out.kept})" if personalise else "-",
                ", ".join(f"{h:.2f}" for h in out.false_alarms) or "none",
                f"{sum(out.caught)}/{len(out.caught)}",
            )
    Console().print(table)
    n = len(args.seeds) * len(synthetic.ROUTINE_INCIDENTS)
    for personalise in (False, True):
        false, caught = totals[personalise]
        label = "personalised" if personalise else "shipped model"
        print(f"{label:<14} false alarms {false}, incidents caught {caught}/{n}")


if __name__ == "__main__":
    main()
