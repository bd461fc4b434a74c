"""Learned places on the shared GeoLife samples, compared with trackintel's stay points.

Imports GeoLife user 003 (``plt-003``, the ``geolife`` importer) and users 001 and 005 of
``geolife_sample.txt.gz`` (the ``csv`` importer with a user) into temporary traces, replays
each trace's location samples through ``PlaceLearner`` (100 m, 5 min, merge 100 m, 15 min
gap: the defaults), and prints per user the stays, places, the top 10 places by visits and
the total dwell. Then runs trackintel 1.4.x ``generate_staypoints`` (``sliding``,
``dist_threshold=100``, ``time_threshold=5``, its default ``gap_threshold`` of 15 min) on the
same fixes, in a separate virtual environment made on demand under ``--bench-venv`` (it is
never a dependency of vigil), and compares: counts; a vigil stay and a trackintel staypoint
match when their time intervals overlap and their centres are within 100 m; precision and
recall of vigil's stays against trackintel's; median absolute start and end differences.

Expected differences (the learner is online, trackintel sees the whole track):

* trackintel ends a staypoint at the first fix *outside* and accepts it when that fix is
  5 min after the anchor (Li et al. take the person as stationary until then); vigil needs a
  fix *inside* 5 min after the anchor, so stays ending in a silence (signal lost indoors, a
  logger switched off for under 15 min) are trackintel's alone. Vigil's stay ends at its
  last fix inside; its ``place.leave`` comes at the fix outside, trackintel's ``finished_at``.
* At a gap over 15 min trackintel drops the staypoint in progress; vigil has already sent
  ``place.arrive`` and closes the stay with ``place.leave`` (reason ``gap``), so those stays
  are vigil's alone (counted as "cut by a gap").
* The last stay of a track: trackintel drops it (``include_last=False``); vigil keeps it open
  (not counted here). trackintel's centre is the mean of the *distinct* fixes; vigil's the
  mean of all fixes: metres at most.

Both run the same anchor sequence, so on the GeoLife samples every matched pair is identical
in start and end, and every unmatched stay falls under the first two points (the output
counts them).

    python bench/places_eval.py [--bench-venv DIR] [--shared DIR] [--no-trackintel]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from agent.detect.places import PlaceLearner, distance_m
from agent.importers import ImportOptions, import_files
from agent.runtime.trace import ReadCounts, read_trace

REPO = Path(__file__).resolve().parents[1]
GEOLIFE_CSV = ImportOptions(time_column="datetime", lat_column="lat", lon_column="lng")
TRACKINTEL = "trackintel>=1.4,<1.5"

#: Runs in the benchmark environment: fixes CSV (user,t,lat,lon) in, staypoints CSV out.
HELPER = """
import sys, warnings
import geopandas as gpd, pandas as pd, trackintel as ti
warnings.simplefilter("ignore")
df = pd.read_csv(sys.argv[1], dtype={"user": str})
gdf = gpd.GeoDataFrame(
    {"user_id": df["user"], "tracked_at": pd.to_datetime(df["t"], unit="s", utc=True)},
    geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
pfs = ti.Positionfixes(gdf)
_, sp = pfs.generate_staypoints(method="sliding", dist_threshold=100, time_threshold=5.0)
epoch = pd.Timestamp(0, tz="UTC")
out = pd.DataFrame({
    "user": sp["user_id"],
    "start": (sp["started_at"] - epoch).dt.total_seconds(),
    "end": (sp["finished_at"] - epoch).dt.total_seconds(),
    "lat": sp.geometry.y, "lon": sp.geometry.x})
out.to_csv(sys.argv[2], index=False)
print(ti.__version__)
"""


@dataclass(frozen=True)
class Interval:
    """One stay: ``start`` (anchor), ``end`` (trackintel: the fix outside; vigil: the last
    fix inside), ``out`` (the fix outside: vigil's ``place.leave`` time), centre."""

    start: float
    end: float
    out: float
    lat: float
    lon: float
    reason: str = ""

    @property
    def until(self) -> float:
        """Where the stay is known to end: the fix outside, or the last fix before a gap."""
        return self.end if self.reason == "gap" else self.out


@dataclass
class UserResult:
    user: str
    fixes: list[tuple[float, float, float]]
    stays: list[Interval]
    learner: PlaceLearner
    seconds: float


def _import(kind: str, source: Path, out: Path, user: str | None) -> Path:
    options = ImportOptions() if user is None else replace(GEOLIFE_CSV, user=user)
    counts = import_files(kind, [source], out, options)
    print(f"  import {kind} {source.name} {user or ''}: {counts.summary()}", file=sys.stderr)
    return out


def learn(user: str, trace: Path) -> UserResult:
    learner = PlaceLearner()
    fixes: list[tuple[float, float, float]] = []
    stays: list[Interval] = []
    samples = [s for s in read_trace([trace], ReadCounts()) if s.sensor == "location"]
    start = time.perf_counter()
    for sample in samples:
        for event in learner.feed(sample):
            if event.kind == "place.leave":
                d = event.data
                stays.append(
                    Interval(
                        d["since"], d["last_t"], event.t, d["stay_lat"], d["stay_lon"], d["reason"]
                    )
                )
    seconds = time.perf_counter() - start
    for s in samples:  # the fixes the learner used, for trackintel
        lat, lon, acc = (s.data.get(k) for k in ("lat", "lon", "accuracy_m"))
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            if not isinstance(acc, int | float) or acc <= learner.dist_m:
                fixes.append((s.t, float(lat), float(lon)))
    return UserResult(user, fixes, stays, learner, seconds)


def report_vigil(r: UserResult) -> None:
    places = r.learner.places
    span_d = (r.fixes[-1][0] - r.fixes[0][0]) / 86400 if r.fixes else 0.0
    gap_cut = sum(1 for s in r.stays if s.reason == "gap")
    dwell_h = sum(p.dwell_s for p in places) / 3600
    print(f"\nuser {r.user}: {len(r.fixes):,} fixes over {span_d:.1f} days")
    print(
        f"  vigil: {len(r.stays)} stays ({gap_cut} cut by a gap"
        f"{', 1 still open' if r.learner.stay and r.learner.stay.place_id else ''}), "
        f"{len(places)} places, total dwell {dwell_h:.1f} h, "
        f"{r.seconds / max(1, len(r.fixes)) * 1e6:.1f} us/fix"
    )
    top = sorted(places, key=lambda p: (-p.visits, -p.dwell_s, p.id))[:10]
    print("    place  visits  dwell_h       lat         lon")
    for p in top:
        print(f"    {p.id:5d}  {p.visits:6d}  {p.dwell_s / 3600:7.2f}  {p.lat:9.5f}  {p.lon:10.5f}")


def compare(vigil: Sequence[Interval], ti: Sequence[Interval], times: Sequence[float]) -> None:
    """Print match counts, precision, recall, median start/end differences, and why the
    unmatched ones are unmatched (``times``: the fixes' times, sorted)."""
    matched_ti: set[int] = set()
    matched_v: set[int] = set()
    d_start: list[float] = []
    d_end: list[float] = []
    d_out: list[float] = []
    exact = 0
    j0 = 0
    for i, v in enumerate(vigil):
        while j0 < len(ti) and ti[j0].end <= v.start:
            j0 += 1
        best: tuple[float, int] | None = None
        j = j0
        while j < len(ti) and ti[j].start < v.until:
            s = ti[j]
            # Stays touching at one instant (the fix outside one anchors the next) don't match.
            overlap = min(v.until, s.end) - max(v.start, s.start)
            if overlap > 0 and distance_m(v.lat, v.lon, s.lat, s.lon) <= 100.0:
                matched_ti.add(j)
                if best is None or overlap > best[0]:
                    best = (overlap, j)
            j += 1
        if best is not None:
            matched_v.add(i)
            s = ti[best[1]]
            d_start.append(abs(v.start - s.start))
            d_end.append(abs(v.end - s.end))
            d_out.append(abs(v.out - s.end))
            exact += v.start == s.start and v.out == s.end
    precision = len(matched_v) / len(vigil) if vigil else float("nan")
    recall = len(matched_ti) / len(ti) if ti else float("nan")
    ti_h = sum(s.end - s.start for s in ti) / 3600
    print(f"  trackintel: {len(ti)} staypoints, total duration {ti_h:.1f} h")
    print(
        f"  matched: {len(matched_v)} vigil stays, {len(matched_ti)} staypoints "
        f"({exact} identical in start and end); precision {precision:.3f}, recall {recall:.3f}"
    )
    v_gap = sum(1 for i, v in enumerate(vigil) if i not in matched_v and v.reason == "gap")
    # A staypoint whose last fix inside is under 5 min after its start ended in a silence.
    silent = 0
    for j, sp in enumerate(ti):
        if j not in matched_ti:
            last_inside = times[bisect.bisect_left(times, sp.end) - 1]
            silent += last_inside - sp.start < 300.0
    print(
        f"  vigil only: {len(vigil) - len(matched_v)} ({v_gap} cut by a gap); trackintel only: "
        f"{len(ti) - len(matched_ti)} ({silent} with no fix inside 5 min after the start)"
    )
    if d_start:
        print(
            f"  median |start diff| {statistics.median(d_start):.0f} s, "
            f"|end diff| {statistics.median(d_end):.0f} s (vigil's last fix inside), "
            f"{statistics.median(d_out):.0f} s (vigil's leave)"
        )


def ensure_venv(where: Path) -> Path:
    """The benchmark environment's python, with trackintel; made and installed if needed."""
    python = where / "bin" / "python"
    check = [str(python), "-c", "import trackintel"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"making {where} with {TRACKINTEL} (once; a few minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", TRACKINTEL], check=True)
    return python


def run_trackintel(
    python: Path, results: Sequence[UserResult], tmp: Path
) -> dict[str, list[Interval]]:
    fixes_csv, sp_csv, helper = tmp / "fixes.csv", tmp / "staypoints.csv", tmp / "helper.py"
    helper.write_text(HELPER)
    with fixes_csv.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "t", "lat", "lon"])
        for r in results:
            w.writerows((r.user, repr(t), repr(lat), repr(lon)) for t, lat, lon in r.fixes)
    start = time.perf_counter()
    done = subprocess.run(
        [str(python), str(helper), str(fixes_csv), str(sp_csv)], capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"trackintel helper failed ({done.returncode}):\n{done.stderr}")
    took = time.perf_counter() - start
    print(f"\ntrackintel {done.stdout.strip()}: all users in {took:.1f} s (own process)")
    out: dict[str, list[Interval]] = {r.user: [] for r in results}
    with sp_csv.open() as f:
        for row in csv.DictReader(f):
            start_t, end_t = float(row["start"]), float(row["end"])
            sp = Interval(start_t, end_t, end_t, float(row["lat"]), float(row["lon"]))
            out[row["user"]].append(sp)
    for stays in out.values():
        stays.sort(key=lambda s: s.start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = os.environ.get("VIGIL_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--shared", type=Path, default=Path(default_shared))
    parser.add_argument("--bench-venv", type=Path, default=Path("/tmp/vigil-bench-venv"))
    parser.add_argument("--no-trackintel", action="store_true", help="vigil's numbers only")
    args = parser.parse_args()
    geolife = args.shared / "traces" / "geolife"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sources = [
            ("003", _import("geolife", geolife / "plt-003", tmp / "003.jsonl", None)),
            *(
                (u, _import("csv", geolife / "geolife_sample.txt.gz", tmp / f"{u}.jsonl", u))
                for u in ("001", "005")
            ),
        ]
        results = [learn(user, trace) for user, trace in sources]
        for r in results:
            report_vigil(r)
        if args.no_trackintel:
            return
        staypoints = run_trackintel(ensure_venv(args.bench_venv), results, tmp)
        for r in results:
            print(f"\nuser {r.user}: vigil vs trackintel")
            vigil_h = sum(s.end - s.start for s in r.stays) / 3600
            print(f"  vigil: {len(r.stays)} stays, total duration {vigil_h:.1f} h")
            compare(r.stays, staypoints[r.user], [t for t, _, _ in r.fixes])
        print(
            "\nvigil only: stays cut by a gap over 15 min; trackintel drops a staypoint in"
            " progress at a gap,\n  but an online place.arrive cannot be taken back."
            "\ntrackintel only: no fix inside 5 min after the anchor; trackintel takes the"
            " person as\n  stationary until the first fix outside (Li et al.), vigil arrives"
            " only on a fix inside.\nend diff: trackintel's finished_at is the first fix"
            " outside, vigil's place.leave time."
        )


if __name__ == "__main__":
    main()
