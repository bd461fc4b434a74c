"""The always-on tier: what each of its three judgements catches, how streams combine, its
state across a restart, and bad input (no crash, no NaN, each case handled as stated in
agent/detect/anomaly.py)."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from agent import synthetic
from agent.config import AnomalyConfig, Config
from agent.detect.anomaly import AnomalyDetector, combine, scoring, stage, to_score
from agent.detect.novelty import WARMUP_N, ValueHistory
from agent.detect.tflite import load_or_explain
from agent.features.streams import stream_values
from agent.gate import Rejected, SampleGate
from agent.pipeline import Pipeline
from agent.runtime.replay import chunked
from agent.samples import Sample
from tests._tools import load_script

START = AnomalyConfig().start_score


def _detector(settings: AnomalyConfig | None = None) -> AnomalyDetector:
    model = load_or_explain()
    assert model is not None  # LiteRT is installed for the tests: never skipped
    return AnomalyDetector(model, settings or AnomalyConfig())


def _run(values: list[float], times: list[float] | None = None) -> list[tuple[float, float]]:
    det = _detector()
    out = []
    for i, v in enumerate(values):
        t = times[i] if times is not None else 60.0 * i
        step = det.feed(t, "m", {"m": v})
        out.append((step.scores["m"], step.node if step.node is not None else 0.0))
    return out


def _finite(scores: list[tuple[float, float]]) -> bool:
    return all(math.isfinite(a) and 0.0 <= a < 1.0 and 0.0 <= b < 1.0 for a, b in scores)


def _two_levels(n: int, seed: int) -> list[float]:
    """Idle near 8 and busy near 55, switching every 20-150 samples: two usual levels."""
    rng = random.Random(seed)
    out: list[float] = []
    level = 8.0
    while len(out) < n:
        out += [level + rng.gauss(0.0, 1.5) for _ in range(rng.randint(20, 150))]
        level = 55.0 if level < 30.0 else 8.0
    return out[:n]


def _history(values: list[float]) -> ValueHistory:
    h = ValueHistory(1000)
    for v in values:
        h.add(v)
    return h


def test_ranks_ignore_how_values_are_spread() -> None:
    """Both usual levels of a two-level stream are ordinary; a Gaussian around their mean
    would call both unusual and miss a dropout to zero, which sits within two deviations."""
    h = _history(_two_levels(1000, 1))
    assert h.surprise(8.0) < 1.0 and h.surprise(55.0) < 1.0
    assert h.surprise(0.0) > 3.0  # below everything seen
    assert h.surprise(200.0) > h.surprise(60.0) > 2.0  # further past the edge is more surprising
    assert _history([1.0] * (WARMUP_N - 1)).surprise(1e9) == 0.0  # still warming up


def test_a_number_seen_between_entries_is_not_past_the_edge() -> None:
    """Entries are a sample of the numbers; the extremes are of all of them."""
    h = ValueHistory(1000)
    for i in range(2000):
        x = float(i % 100)
        h.add(x) if i % 7 == 0 else h.observe(x)
    h.observe(500.0)  # once, between entries
    for _ in range(6):
        h.observe(50.0)
    h.add(50.0)
    assert h.surprise(500.0) < h.surprise(499.0) + 1e-9 < 4.0
    assert h.surprise(1000.0) > 10.0


def test_a_dropout_in_a_two_level_stream_starts_an_anomaly() -> None:
    values = _two_levels(3000, 2)
    values[2500:2530] = [0.0] * 30
    scores = _run(values)
    assert max(s for s, _ in scores[1200:2500]) < START  # the switches are ordinary by now
    assert scores[2500][0] >= START


def test_a_stuck_sensor_is_caught_by_its_spread() -> None:
    """A sensor that freezes on its last (ordinary) value: no value is new, the window's
    spread collapses."""
    rng = random.Random(3)
    values = [20.0 + rng.gauss(0.0, 2.0) for _ in range(2000)]
    values[1500:1600] = [values[1499]] * 100
    scores = _run(values)
    assert max(s for s, _ in scores[500:1500]) < START
    assert max(s for s, _ in scores[1500:1600]) >= START


def test_a_shape_the_model_does_not_know_is_caught_by_the_model() -> None:
    """A smooth wave whose values and spread stay ordinary while a stretch of it turns to
    noise in the same range: only the shape changes."""
    rng = random.Random(4)
    values = [50.0 + 10.0 * math.sin(2 * math.pi * i / 24) for i in range(3000)]
    values[2500:2560] = [50.0 + rng.uniform(-10.0, 10.0) for _ in range(60)]
    det = _detector()
    tiny = [det.feed(60.0 * i, "m", {"m": v}).tiny.get("m", 0.0) for i, v in enumerate(values)]
    assert max(tiny[1000:2500]) < 0.5
    assert max(tiny[2500:2560]) >= START


def test_constant_stream_is_quiet() -> None:
    scores = _run([42.0] * 400)
    assert _finite(scores) and max(s for s, _ in scores) < 0.1


def test_nan_and_infinity_never_reach_the_stage() -> None:
    gate = SampleGate()
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(Rejected, match="non_finite"):
            gate.admit("metric", 1.0, {"name": "m", "value": bad})


def test_huge_jump_is_the_largest_finite_score() -> None:
    rng = random.Random(1)
    values = [10.0 + rng.gauss(0.0, 1.0) for _ in range(300)] + [1e300] + [10.0] * 50
    scores = _run(values)
    assert _finite(scores)
    assert scores[300][0] == max(s for s, _ in scores) > 0.99


def test_repeated_out_of_order_and_gappy_times_are_harmless() -> None:
    """Time only spaces the histories' entries: repeated times and a step back (which the
    gate refuses per sensor, but a stage must not break on) never add one early, and a week
    without samples adds the next at once. The scores stay finite and the same incident is
    found."""
    rng = random.Random(2)
    values = [50.0 + rng.gauss(0.0, 2.0) for _ in range(1400)] + [90.0] + [50.0] * 5
    times = [float(60 * (i // 3)) for i in range(len(values))]  # every time three times
    times[200] = -5.0
    times[1300:] = [t + 7 * 86400 for t in times[1300:]]
    plain, odd = _run(values), _run(values, times)
    assert _finite(odd)
    assert plain[1400][0] >= START and odd[1400][0] >= START


def test_one_odd_stream_among_many_is_diluted_but_a_wild_one_is_not() -> None:
    """Bonferroni: of 30 streams, one at its edge is expected now and then; far past it is
    not."""
    assert combine([3.0]) == 3.0
    quiet = [0.3] * 29
    assert combine([3.0, *quiet]) == pytest.approx(3.0 - math.log10(30))
    assert combine([20.0, *quiet]) > 18.0
    assert combine([0.0] * 5) == 0.0
    assert to_score(3.0) == 0.5


def test_an_incident_starts_and_ends_once_naming_its_stream() -> None:
    pipeline = Pipeline(Config(), (), load_or_explain())
    rng = random.Random(3)
    events = []
    for i in range(1600):
        v = 30.0 + rng.gauss(0.0, 1.0) + (40.0 if 1400 <= i < 1420 else 0.0)
        events += pipeline.feed(Sample("system", 1000.0 + 10 * i, {"cpu_pct": v})).events
    kinds = [(e.kind, e.subject) for e in events if e.kind.startswith("anomaly.")]
    assert kinds == [("anomaly.start", "system"), ("anomaly.end", "system")]
    start = next(e for e in events if e.kind == "anomaly.start")
    assert start.t == 1000.0 + 10 * 1400 and start.data["streams"] == ["system.cpu_pct"]
    end = next(e for e in events if e.kind == "anomaly.end")
    # Open while the values are beyond their range from before (the ranks alone would have
    # let it end within a few samples), closed a few samples after the incident.
    assert 1000.0 + 10 * 1420 <= end.t <= 1000.0 + 10 * 1430


def _incident_events(every_s: float, n: int) -> list[object]:
    """A steady stream sampled every ``every_s`` for ``n`` samples, with 20 samples 40
    deviations high 200 samples before the end; the pipeline's events with its default
    rules."""
    pipeline = Pipeline(Config(), (), load_or_explain())
    rng = random.Random(3)
    events = []
    for i in range(n):
        v = 30.0 + rng.gauss(0.0, 1.0) + (40.0 if n - 200 <= i < n - 180 else 0.0)
        events += pipeline.feed(Sample("system", 1000.0 + every_s * i, {"cpu_pct": v})).events
    return events


def test_an_anomaly_on_the_first_day_is_recorded_and_wakes_nothing() -> None:
    """A stream with less than a day of history has not shown its day yet: its anomaly says
    ``settled: false``, and the default rule does not wake the larger model for it; the same
    incident after a day and a half of history is settled and wakes it."""
    young = _incident_events(10.0, 1600)  # 4.4 hours
    (start,) = [e for e in young if e.kind == "anomaly.start"]
    assert start.data["settled"] is False
    assert not [e for e in young if e.kind == "rule.fired" and e.subject == "anomaly"]
    settled = _incident_events(60.0, 2200)  # 1.5 days
    (start,) = [e for e in settled if e.kind == "anomaly.start"]
    assert start.data["settled"] is True
    (fired,) = [e for e in settled if e.kind == "rule.fired" and e.subject == "anomaly"]
    assert fired.t == start.t


def _creeping_system(days: float, drop_at: int | None) -> list[tuple[int, list[str]]]:
    """A system source of nine streams every 10 s, its swap on a 0.1 % grid draining one step
    every 3 hours (as swap does after a boot), with the swap 1 % lower from row ``drop_at``:
    the rows where an anomaly started, and the streams it named."""
    rng = random.Random(2)
    det = _detector()
    times, rows = [], []
    level = 3.0
    for i in range(int(days * 8640)):
        if i % 1080 == 1079:
            level = round(level - 0.1, 1)
        swap = level if drop_at is None or i < drop_at else round(level - 1.0, 1)
        times.append(1_780_272_000.0 + 10.0 * i)
        rows.append(
            {
                "system.swap_pct": swap,
                "system.cpu_pct": round(rng.uniform(2, 8), 1),
                "system.load1": round(rng.uniform(0.1, 0.5), 2),
                "system.mem_used_pct": round(40 + rng.gauss(0, 0.5), 1),
                "system.temp_C": round(45 + rng.gauss(0, 1), 1),
                "system.net_rx_Bps": round(rng.expovariate(1 / 2000), 1),
                "system.net_tx_Bps": round(rng.expovariate(1 / 500), 1),
                "system.disk_read_Bps": round(rng.expovariate(1 / 5000), 1),
                "system.disk_write_Bps": round(rng.expovariate(1 / 8000), 1),
            }
        )
    starts = []
    for a in range(0, len(times), 4096):
        part = slice(a, a + 4096)
        found = det.feed_chunk(times[part], ["system"] * len(times[part]), rows[part])
        starts += [
            (a + i, e.data["streams"])
            for i, events in found.events.items()
            for e in events
            if e.kind == "anomaly.start"
        ]
    return starts


def test_a_quantised_stream_one_step_past_its_range_is_at_its_edge() -> None:
    """Swap creeping down by its resolution: each step is a new minimum, but one step past
    the range is the least move a reading on that grid can make, not a far one; before the
    values history knew the stream's step, every step after the first day was an anomaly.
    A drop of ten steps still is one, on its first sample."""
    creep = _creeping_system(4.0, None)
    assert not [row for row, _ in creep if row > 8640 and row % 1080 == 1079]
    drop = 3 * 8640
    dropped = _creeping_system(3.2, drop)
    assert (drop, ["system.swap_pct"]) in dropped


def test_a_new_level_that_stays_is_accepted_after_hold_s() -> None:
    pipeline = Pipeline(Config(), (), load_or_explain())
    rng = random.Random(8)
    events = []
    for i in range(2400):
        v = 30.0 + rng.gauss(0.0, 1.0) + (40.0 if i >= 1400 else 0.0)
        events += pipeline.feed(Sample("system", 10.0 * i, {"cpu_pct": v})).events
    kinds = [(e.kind, e.t) for e in events if e.kind.startswith("anomaly.")]
    assert kinds[0] == ("anomaly.start", 14000.0)
    assert kinds[1][0] == "anomaly.end" and 14000.0 + 3600.0 <= kinds[1][1] <= 14000.0 + 3700.0
    assert len(kinds) == 2  # and the new level is usual from then on


def test_state_and_histories_restore_exactly() -> None:
    rng = random.Random(5)
    values = [100.0 + rng.gauss(0.0, 5.0) for _ in range(1500)]
    first = _detector()
    for i, v in enumerate(values[:1000]):
        first.feed(60.0 * i, "m", {"m": v, "m2": v * 2})
    second = _detector()
    for i in range(50):  # a stage that has scored the same streams takes the state as well
        second.feed(60.0 * i, "m", {"m": 1.0, "m2": 2.0})
    second.restore(first.state(), first.history_state())
    for i, v in enumerate(values[1000:], start=1000):
        a = first.feed(60.0 * i, "m", {"m": v, "m2": v * 2})
        b = second.feed(60.0 * i, "m", {"m": v, "m2": v * 2})
        assert (a.scores, a.tiny, a.node, a.events) == (b.scores, b.tiny, b.node, b.events)


def test_a_source_of_many_streams_restores_exactly() -> None:
    """Twelve metrics with lone blips, restored after a day and a half: the source's
    calibration and each stream's last two surprises (what a calm row holds to) carry over.
    The first sample after one restore is a blip after a blip and a quiet one (the older of
    the two says), after the other a blip after two quiet ones (either says)."""
    rng = random.Random(9)
    rows = []
    for i in range(2 * 1440):
        load = 50.0 + 20.0 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0.0, 2.0)
        row = {f"m{k:02d}": (k + 1) * load + rng.gauss(0.0, 3.0) for k in range(12)}
        if i % 97 == 0 or i in (2098, 2100, 2200):
            row["m05"] += 400.0  # a lone blip: a calm row
        rows.append(row)
    for cut in (2100, 2200):
        first = _detector()
        for i, row in enumerate(rows[:cut]):
            first.feed(60.0 * i, "system", row)
        second = _detector()
        second.restore(first.state(), first.history_state())
        for i, row in enumerate(rows[cut:], start=cut):
            a = first.feed(60.0 * i, "system", row)
            b = second.feed(60.0 * i, "system", row)
            assert (a.scores, a.tiny, a.node, a.events) == (b.scores, b.tiny, b.node, b.events)


def test_a_step_into_a_usual_state_is_news_to_the_model_not_an_anomaly() -> None:
    """A charger plugged in at 18:00 and out at 07:30 every day: to the model, which forecasts
    the newest value from the ones before, each flip is news (its own score high); the
    stream's score keeps the model's say within ``MODEL_MARGIN`` of how usual the value is
    (``YOUNG_MODEL_MARGIN`` in the stream's first day), so only the first flip ever starts
    an anomaly (a detector hours old knows one state). Without context: with it, the
    battery's values are also explained by their hour (``test_context.py``)."""
    det = _detector(AnomalyConfig(context=False))
    starts, model_says, stream_says = [], [], []
    for i in range(10 * 1440):
        minute = i % 1440
        charging = 1.0 if minute < 450 or minute >= 1080 else 0.0
        step = det.feed(60.0 * i, "battery", {"charging": charging})
        starts += [i for e in step.events if e.kind == "anomaly.start"]
        if i > 3 * 1440 and minute in (450, 1080):
            model_says.append(step.tiny["charging"])
            stream_says.append(step.scores["charging"])
    assert starts == [450]  # uncapped, the first evening's plug-in starts one too
    assert all(s <= m for s, m in zip(stream_says, model_says, strict=True))
    assert any(s < m for s, m in zip(stream_says, model_says, strict=True))  # held below
    assert max(stream_says) < START and min(model_says) > 0.4


def test_a_stream_in_its_first_day_gives_the_model_less_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The generated laptop's first evening: the charger plugged in at 18:00 for the first
    time. Hours old, the battery's streams hold the model's news of it within
    ``YOUNG_MODEL_MARGIN``: no start; with the settled margin from the first sample, one.
    Without context: with it, the battery's values are also explained by their hour."""
    battery = [s for s in synthetic.generate(1, 7) if s.sensor == "battery"]
    evening = synthetic.START_T + 18 * 3600.0

    def evening_starts() -> list[float]:
        det = _detector(AnomalyConfig(timezone="UTC", context=False))
        out = []
        for sample in battery:
            step = det.feed(sample.t, "battery", stream_values(sample))
            out += [sample.t for e in step.events if e.kind == "anomaly.start"]
        return [t for t in out if evening <= t < evening + 3600.0]

    assert not evening_starts()
    monkeypatch.setattr(scoring, "YOUNG_MODEL_MARGIN", scoring.MODEL_MARGIN)
    assert evening_starts()


def test_another_models_errors_are_not_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Histories saved with another model (an older vigil's, or none named) keep each
    stream's values and spreads, and drop its model errors, which were on another scale: one
    log line; the same model keeps all of them."""
    first = _detector()
    for i in range(600):
        first.feed(60.0 * i, "m", {"m": float(i % 7) + 0.1 * math.sin(i)})
    saved = first.history_state()
    assert len(first.streams["m"].errors) > 0
    same = _detector()
    assert same.restore(first.state(), saved)
    assert same.history_state() == saved
    for other in ({**saved, "model": "0" * 64}, {k: v for k, v in saved.items() if k != "model"}):
        det = _detector()
        with caplog.at_level("WARNING"):
            assert det.restore(first.state(), other)
        assert "afresh" in caplog.text
        caplog.clear()
        kept, dropped = det.streams["m"], first.streams["m"]
        assert len(kept.errors) == 0
        assert kept.values.encode() == dropped.values.encode()
        assert kept.spreads.encode("<f4") == dropped.spreads.encode("<f4")


def test_state_of_an_older_format_or_damaged_is_dropped_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database written by the first always-on tier (a running mean and a likelihood per
    stream) or a damaged row: one log line, and the stage learns afresh."""
    older = {
        "streams": {"m": {"values": [1.0, 2.0], "n": 2, "mean": 1.5, "var": 0.25}},
        "likelihood": {"m": {"n": 2, "mean": 0.1, "var": 0.0, "short": [0.1]}},
        "sources": {},
    }
    good = _detector()
    for i in range(200):
        good.feed(60.0 * i, "m", {"m": float(i % 7)})
    damaged = {**good.state(), "streams": {"m": {"window": [1.0], "n": "many"}}}
    broken_history = {"streams": {"m": {"values": {"entries": "not base64!"}}}}
    for saved, history, said in (
        (older, None, "format 1"),
        (damaged, None, "damaged"),
        (good.state(), broken_history, "damaged"),
    ):
        det = _detector()
        with caplog.at_level("WARNING"):
            assert det.restore(saved, history) is False
        assert said in caplog.text and "afresh" in caplog.text
        caplog.clear()
        assert det.state() == _detector().state()  # nothing half restored
    assert _detector().restore(good.state(), good.history_state()) is True


def test_the_pipeline_names_what_it_dropped() -> None:
    """The daemon counts each dropped part (``state.dropped.<part>``)."""
    pipeline = Pipeline(Config(), (), load_or_explain())
    older = {"streams": {"m": {"values": [1.0], "n": 1, "mean": 1.0, "var": 0.0}}}
    state = {"fence_state": {}, "detector_state": {"anomaly": older}, "places": []}
    assert pipeline.restore({**state, "weights": None}) == ["anomaly"]
    state["detector_state"] = {}
    assert pipeline.restore({**state, "weights": None}) == []


def test_several_streams_a_little_odd_at_once_say_more_than_any_one() -> None:
    """Five independent streams, each moved by 2.4 deviations for a while: the best of them,
    corrected for five, is not odd enough to start an anomaly; the sum of their surprises has
    never been that high, so the source's score goes past its best stream's and past all it
    was in the weeks before. The same streams moving together as they always do (one shared
    swing) start nothing. (Whether the stretch itself starts one is a matter of a few
    thousandths around the start score: 0.543 here.) The shape memory is off: its novelty
    of the odd stretch would lift the best stream to the sum's level, and this is about the
    sum."""
    rng = random.Random(6)
    det = _detector(AnomalyConfig(shape_memory=False))
    starts, usual, odd_nodes, best_alone = [], [], [], []
    for i in range(3000):
        shared = 3.0 * math.sin(2 * math.pi * i / 200)  # a usual swing all five share
        odd = 2.4 if 2600 <= i < 2630 else 0.0
        values = {f"s{k}": shared + rng.gauss(0.0, 1.0) + odd for k in range(5)}
        step = det.feed(600.0 * i, "box", values)
        starts += [i for e in step.events if e.kind == "anomaly.start"]
        if 2600 <= i < 2630:
            surprises = [3.0 * sc / (1.0 - sc) for sc in step.scores.values()]
            best_alone.append(to_score(combine(surprises)))
            odd_nodes.append(step.node)
        elif 1000 <= i < 2600:  # warm
            usual.append(step.node)
    assert max(best_alone) < START  # no stream alone would start it
    assert max(odd_nodes) > max(best_alone)  # the sum says more (equal without it)
    assert max(odd_nodes) > max(usual)
    assert all(2600 <= i < 2630 for i in starts)


def test_streams_that_move_together_judge_each_other() -> None:
    """Five streams that always swing together: their swings raise nothing; when one of them
    turns against the others (still inside its usual range, so no value of it is new), an
    anomaly starts and names it (co-movement's doing, on by default: none starts without it)."""

    def starts(settings: AnomalyConfig) -> list[tuple[int, list[str]]]:
        rng = random.Random(7)
        det = _detector(settings)
        found = []
        for i in range(3000):
            shared = 3.0 * math.sin(2 * math.pi * i / 200)
            values = {f"s{k}": shared + rng.gauss(0.0, 0.3) for k in range(5)}
            if 2600 <= i < 2660:
                values["s0"] = -shared + rng.gauss(0.0, 0.3)  # down when the others go up
            step = det.feed(600.0 * i, "system", values)
            found += [(i, e.data["streams"]) for e in step.events if e.kind == "anomaly.start"]
        return found

    found = starts(AnomalyConfig())
    assert found and all(2600 <= i < 2660 for i, _ in found)
    assert "s0" in found[0][1]
    assert not any(2600 <= i < 2660 for i, _ in starts(AnomalyConfig(co_movement=False)))


def test_streams_that_freeze_together_are_not_explained_by_each_other() -> None:
    """Two of five streams that swing together freeze at their last values (inside their
    ranges; they agree with each other): their stillness is no co-movement, an anomaly
    starts and names them."""
    rng = random.Random(12)
    det = _detector(AnomalyConfig())
    starts, frozen = [], {}
    for i in range(3000):
        shared = 3.0 * math.sin(2 * math.pi * i / 200)
        values = {f"s{k}": shared + rng.gauss(0.0, 0.3) for k in range(5)}
        if 2600 <= i < 2660:
            frozen = frozen or {"s1": values["s1"], "s2": values["s2"]}
            values.update(frozen)
        step = det.feed(600.0 * i, "system", values)
        starts += [(i, e.data["streams"]) for e in step.events if e.kind == "anomaly.start"]
    assert starts and all(2600 <= i < 2660 for i, _ in starts)
    assert {"s1", "s2"} & set(starts[0][1])


def test_a_stream_is_named_against_the_others_only_while_they_are_calm() -> None:
    """Co-movement raises the stream the others explain worst only in a row where the
    streams are calm on their own; in a row where several are loud (a burst, where a linear
    model's residuals say little), it only lowers what the others explain."""

    def row(rng: random.Random, shared: float) -> dict[str, float]:
        return {f"s{k}": shared + rng.gauss(0.0, 0.3) for k in range(6)}

    on, off = _detector(AnomalyConfig()), _detector(AnomalyConfig(co_movement=False))
    rng = random.Random(4)
    for i in range(412):  # 2.9 days a sample every 10 minutes: the model and ranks ready
        values = row(rng, 3.0 * math.sin(2 * math.pi * i / 50))
        on.feed(600.0 * i, "system", values)
        off.feed(600.0 * i, "system", values)
    shared = 3.0  # the top of the swing
    calm = row(rng, shared) | {"s5": 0.0}  # s5 stays at its middle while the others rise
    with_co, without = on.feed(600.0 * 412, "system", calm), off.feed(600.0 * 412, "system", calm)
    assert with_co.scores["s5"] > without.scores["s5"]  # named
    loud = row(rng, shared) | {"s0": 30.0, "s1": 31.0, "s2": 29.0, "s5": 0.0}
    with_co, without = on.feed(600.0 * 413, "system", loud), off.feed(600.0 * 413, "system", loud)
    assert all(with_co.scores[n] <= without.scores[n] for n in without.scores)  # nothing raised


def test_a_source_of_many_streams_is_judged_against_its_own_usual_surprise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve independent heavy-tailed streams: some stream is at a new extreme in many
    rows, so the source's raw surprise is often high, and ranked among its own past ones it
    starts fewer anomalies on that routine; a real incident (every stream far above its
    range) still starts one."""

    def starts() -> list[int]:
        rng = random.Random(13)
        det = _detector()
        found = []
        for i in range(3 * 1440):
            values = {f"m{k:02d}": rng.paretovariate(1.5) for k in range(12)}
            if i >= 3 * 1440 - 30:
                values = {name: 1e6 + v for name, v in values.items()}
            step = det.feed(60.0 * i, "server", values)
            found += [i for e in step.events if e.kind == "anomaly.start"]
        return found

    calibrated = starts()
    monkeypatch.setattr(stage, "CALIBRATE_STREAMS", 10**6)
    raw = starts()
    assert calibrated[-1] >= 3 * 1440 - 30 and raw[-1] >= 3 * 1440 - 30  # the incident
    assert len(calibrated) < len(raw)


def _server_f1(seed: int, plan: dict[str, int]) -> float:
    """A generated server of 20 to 40 metrics driven by shared load factors
    (bench/multivariate.py: bursts that move most metrics are its routine), four days, with
    the faults of ``plan`` in its last two: the best point-wise F1 of its source's score on
    those two days (the bench's measure)."""
    bench = load_script(Path(__file__).resolve().parents[2] / "bench" / "multivariate.py")
    rows = 4 * 1440
    server = bench.generate_source(seed, 1, rows, plan=plan)
    assert Counter(f.kind for f in server.faults) == Counter(plan)
    samples = [
        Sample("system", 60.0 * i, dict(zip(server.names, row, strict=True)))
        for i, row in enumerate(server.values.tolist())
    ]
    pipeline = Pipeline(Config(), (), load_or_explain())
    steps = [step for chunk in chunked(iter(samples)) for step in pipeline.feed_chunk(chunk)]
    node = np.array([step.node or 0.0 for step in steps])
    f1, _ = bench.best_f1(node[rows // 2 :], server.labels[rows // 2 :])
    return float(f1)


def test_a_metric_decoupling_alone_is_not_discounted_by_the_source_s_routine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two metrics of a server stop following the others for a few hours. Each decoupling
    row is calm (one metric loud among dozens) and keeps its surprise. Calibrated in every
    row, against the bursts' surprises, the decouplings are harder to tell from normal rows."""
    kept = _server_f1(777, {"decoupling": 2})
    monkeypatch.setattr(stage, "CALM_NODE_SHARE", 0.0)
    assert kept > _server_f1(777, {"decoupling": 2}) + 0.02


def test_a_server_s_fault_counts_as_far_as_it_lasts_not_its_one_sample_blips(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A metric shifted for hours and a group of metrics stuck: in a calm row each stream
    counts for its source only as far as it was surprising in two of its last three samples,
    so the best of dozens of streams' one-sample blips no longer rivals the faults. Without
    that, the best F1 drops by more than a fifth."""
    held = _server_f1(777, {"shift": 1, "stuck": 1})
    monkeypatch.setattr(
        stage.AnomalyDetector, "_held", lambda self, plan, rows: plan.scores.surprise[rows]
    )
    assert held > 1.25 * _server_f1(777, {"shift": 1, "stuck": 1})


def test_a_new_install_s_first_incidents_are_not_judged_against_each_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve streams on their first day: a big event in the morning, then three streams run
    away in the afternoon. Calibrated against the day so far, the runaway would look usual
    next to the morning; before a day of its own surprises a source is not calibrated."""

    def starts() -> list[int]:
        rng = random.Random(17)
        det = _detector()
        found = []
        for i in range(12 * 360):  # 12 hours, a sample every 10 s
            values = {f"m{k:02d}": 50.0 + rng.gauss(0.0, 2.0) for k in range(12)}
            if 3 * 360 <= i < 3 * 360 + 60:
                values = {name: v + 200.0 for name, v in values.items()}
            if 9 * 360 <= i < 9 * 360 + 60:
                values |= {"m00": 75.0, "m01": 75.0, "m02": 75.0}
            step = det.feed(10.0 * i, "system", values)
            found += [i for e in step.events if e.kind == "anomaly.start"]
        return found

    first_day = starts()
    assert any(3 * 360 <= i < 3 * 360 + 60 for i in first_day)
    assert any(9 * 360 <= i < 9 * 360 + 60 for i in first_day)  # the runaway is found
    monkeypatch.setattr(stage, "CALIBRATE_AFTER_S", 0.0)
    assert not any(9 * 360 <= i < 9 * 360 + 60 for i in starts())  # what the gate prevents


def test_a_new_surge_during_a_held_anomaly_gets_its_own() -> None:
    """CPU moves to a new level (held open: its value stays beyond its range); 15 minutes
    later memory jumps: not hidden in the held anomaly, but an end and a new start."""
    pipeline = Pipeline(Config(), (), load_or_explain())
    rng = random.Random(9)
    events = []
    for i in range(1700):
        cpu = 30.0 + rng.gauss(0.0, 1.0) + (40.0 if i >= 1400 else 0.0)
        mem = 50.0 + rng.gauss(0.0, 1.0) + (30.0 if 1490 <= i < 1500 else 0.0)
        sample = Sample("system", 10.0 * i, {"cpu_pct": cpu, "mem_used_pct": mem})
        events += pipeline.feed(sample).events
    kinds = [(e.kind, e.t) for e in events if e.kind.startswith("anomaly.")]
    assert kinds[:3] == [
        ("anomaly.start", 14000.0),
        ("anomaly.end", 14900.0),
        ("anomaly.start", 14900.0),
    ]
    second = [e for e in events if e.kind == "anomaly.start"][1]
    assert "system.mem_used_pct" in second.data["streams"]


def test_streams_gone_for_a_history_span_are_dropped() -> None:
    """Interfaces renamed every hour (docker's veths, a phone's tethering): the stage keeps
    the state of the streams of the last ``history_s`` only, not of every name ever seen."""
    settings = AnomalyConfig(history_s=86_400.0)
    detector = _detector(settings)
    rng = random.Random(3)
    t = 0.0
    detector.feed(t, "system", {"system.net.veth0.rx_Bps": 1.0})  # a layout of its own
    for hour in range(24 * 5):
        names = {"system.cpu_pct": rng.random(), f"system.net.veth{hour}.rx_Bps": rng.random()}
        for _ in range(6):
            detector.feed(t, "system", names)
            t += 600.0
    streams = detector.streams
    assert "system.cpu_pct" in streams
    assert len(streams) <= 1 + 25  # cpu and the interfaces of the last day (and an hour)
    assert streams["system.cpu_pct"].n == 24 * 5 * 6
    state = detector.state()
    assert len(state["streams"]) == len(streams)
    # A name that comes back after being dropped starts afresh (also in a layout seen before).
    detector.feed(t, "system", {"system.net.veth0.rx_Bps": 1.0})
    assert detector.streams["system.net.veth0.rx_Bps"].n == 1
    restored = _detector(settings)
    assert restored.restore(detector.state(), detector.history_state())
    assert restored.state() == detector.state()


def test_co_movement_s_residuals_stand_for_the_days_not_the_first_hours() -> None:
    """Five system streams that swing together, a sample every 10 s. The model is ready
    after a day; its first hours after that are a quiet night (the streams close to each
    other), then the day's looser agreement. The residual histories take an entry on the
    values' grid while they fill (not every residual: 1,000 of them would be the first 2.8
    hours of night, and every daytime residual rare against them for weeks), so the second
    and third days' ordinary mornings start nothing, and the history holds the hours it
    spans on that grid."""
    rng = random.Random(17)
    det = _detector(AnomalyConfig(context=False, shape_memory=False))
    step_s, day = 10.0, 8640
    every = AnomalyConfig().history_s / AnomalyConfig().history_n
    starts = []
    for block in range(0, 3 * day, 720):
        times, values = [], []
        for i in range(block, block + 720):
            hour = (i % day) * step_s / 3600.0
            noise = 0.2 if hour < 6.0 else 1.0  # night: the streams agree closely
            shared = 10.0 * math.sin(2 * math.pi * i / 360) if hour >= 6.0 else 0.0
            times.append(step_s * i)
            values.append({f"s{k}": 50.0 + shared + rng.gauss(0.0, noise) for k in range(5)})
        result = det.feed_chunk(times, ["system"] * len(times), values)
        starts += [
            block + r
            for r, events in result.events.items()
            for e in events
            if e.kind == "anomaly.start"
        ]
        if block + 720 == day + 12 * 360:  # noon on the second day: 12 h since the model
            held = len(det.streams["s0"].own_history("residuals", 1000))
            assert abs(held - 12 * 3600 / every) <= 2
    assert not [i for i in starts if i >= day]
