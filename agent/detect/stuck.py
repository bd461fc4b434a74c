"""Stream values -> ``sensor.stuck`` / ``sensor.unstuck`` events: a reading held at one exact
value far longer than the stream ever held one in the same state.

A broken gauge or a hung driver keeps reporting its last number. Each stream's runs of one
exact value are measured in its sample time and kept per *state* of its sensor (the sample's
flags: a battery's percentage holds for an hour while charging near full, and never for more
than a few minutes while discharging). A run is judged once its state has a day behind it
and ten finished runs: it is stuck when it has lasted ``STUCK_S``, ``MIN_REPEATS`` readings
and ``TIMES_LONGEST`` times the longest earlier run in that state. A run at the state's
extremes so far is not judged: a rate at zero or a battery at 100 % is a real floor or
ceiling, not a stuck reading. Streams that hold levels by nature (memory, swap, a process's
share, positions) and the apps sensor's rankings are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.detect.anomaly.context import LEVEL_STREAMS
from agent.samples import Event, Sample, Scalar

#: A run is stuck once it has lasted this long and this many readings (a stream read every
#: 5 minutes or every hour repeats a value by chance), and ``TIMES_LONGEST`` times the
#: longest earlier run in its state.
STUCK_S = 300.0
MIN_REPEATS = 8
TIMES_LONGEST = 2.0
#: A state is judged once it has a day behind it and this many finished runs.
SETTLED_S = 86_400.0
MIN_RUNS = 10
#: A pause in a stream's sampling (a suspend, a restart) longer than this and ``GAP_STEPS``
#: of its last step ends a run: a sleeping laptop's readings are not stuck.
GAP_S = 600.0
GAP_STEPS = 5.0
#: Streams whose readings hold by nature: the tier's level streams (memory, swap), the apps
#: sensor's rankings (a share held steady is no fault), positions while the device is still.
HELD_BY_NATURE = (*LEVEL_STREAMS, "apps.", "location.")


@dataclass(slots=True)
class _Runs:
    """What one stream's finished runs in one state have shown."""

    first_t: float
    lo: float = math.inf
    hi: float = -math.inf
    longest_s: float = 0.0
    count: int = 0


@dataclass(slots=True)
class _Run:
    """A stream's current run of one value (kept and reset in place: this is per value)."""

    value: float
    start: float
    last: float
    step: float  # the stream's last step between readings within a run
    state: str
    seen: _Runs
    repeats: int = 0
    stuck: bool = False


_UNSEEN: Any = object()


class StuckReadings:
    """Watches every numeric stream's runs of one exact value."""

    def __init__(self) -> None:
        self._runs: dict[str, _Run | None] = {}  # None: a stream that is not judged
        self._seen: dict[tuple[str, str], _Runs] = {}
        self._flags: dict[str, tuple[str, ...]] = {}

    def feed(self, sample: Sample, values: dict[str, float]) -> list[Event]:
        """One sample's stream values (``stream_values``) -> the events they make."""
        if not values or sample.sensor in ("apps", "location"):
            return []
        data = sample.data
        flags = self._flags.get(sample.sensor)
        if flags is None:  # a sensor's fields are its code's: its first sample names its flags
            flags = self._flags[sample.sensor] = tuple(k for k, v in data.items() if _flag(v))
        state = ""
        if flags:
            state = ",".join([f"{k}={int(data[k] is True)}" for k in flags if k in data])
        t = sample.t
        events: list[Event] = []
        runs = self._runs
        for name, value in values.items():
            run = runs.get(name, _UNSEEN)
            if run is None:  # a stream not judged
                continue
            if run is _UNSEEN:
                if _judged(name, data):
                    runs[name] = _Run(value, t, t, 0.0, state, self._runs_in(name, state, t))
                else:
                    runs[name] = None
                continue
            gap = t - run.last
            joined = gap <= GAP_S or gap <= GAP_STEPS * run.step
            if joined and run.value == value and run.state == state:
                run.step, run.last = gap, t
                run.repeats += 1
                if not run.stuck and _is_stuck(run):
                    run.stuck = True
                    events.append(_stuck_event(name, run))
                continue
            seen = run.seen  # the run is over
            seen.count += 1
            last_value = run.value
            if last_value < seen.lo:
                seen.lo = last_value
            if last_value > seen.hi:
                seen.hi = last_value
            if run.repeats:  # (a single reading held for no time)
                held = run.last - run.start
                if held > seen.longest_s:
                    seen.longest_s = held
                if run.stuck:
                    said = {"value": last_value, "held_s": round(held, 1)}
                    events.append(Event(t, "sensor.unstuck", name, said))
                    run.stuck = False
                run.repeats = 0
            if run.state != state:
                run.state, run.seen = state, self._runs_in(name, state, t)
            run.value = value
            run.start = run.last = t
            if joined:
                run.step = gap
        return events

    def _runs_in(self, name: str, state: str, t: float) -> _Runs:
        seen = self._seen.get((name, state))
        if seen is None:
            seen = self._seen[(name, state)] = _Runs(first_t=t)
        return seen

    # -- state kept across restarts ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What the memory keeps: each stream's finished runs per state, and its open run."""
        return {
            "seen": [
                [name, state, s.first_t, _finite(s.lo), _finite(s.hi), s.longest_s, s.count]
                for (name, state), s in self._seen.items()
            ],
            "runs": [
                [name, r.value, r.start, r.last, r.step, r.state, r.repeats, r.stuck]
                for name, r in self._runs.items()
                if r is not None
            ],
        }

    def restore(self, state: dict[str, Any]) -> int:
        """Take back what ``state`` gave; returns how many entries were unreadable (each
        skipped: its stream's runs start afresh, the others are kept)."""
        skipped = 0
        for entry in state.get("seen", []):
            try:
                name, key, first_t, lo, hi, longest_s, count = entry
                self._seen[(str(name), str(key))] = _Runs(
                    float(first_t),
                    math.inf if lo is None else float(lo),
                    -math.inf if hi is None else float(hi),
                    float(longest_s),
                    int(count),
                )
            except (TypeError, ValueError):
                skipped += 1
        for entry in state.get("runs", []):
            try:
                name, value, start, last, step, key, repeats, stuck = entry
                seen = self._seen[(str(name), str(key))]
                run = _Run(float(value), float(start), float(last), float(step), str(key), seen)
                run.repeats, run.stuck = int(repeats), bool(stuck)
            except (KeyError, TypeError, ValueError):
                skipped += 1
                continue
            self._runs[str(name)] = run
        return skipped


def _flag(value: object) -> bool:
    return value is True or value is False


def _judged(name: str, data: Mapping[str, Scalar]) -> bool:
    """Whether a stream's runs are judged: not held by nature, not a flag."""
    return not _flag(data.get(name.partition(".")[2])) and not name.startswith(HELD_BY_NATURE)


def _is_stuck(run: _Run) -> bool:
    seen = run.seen
    held = run.last - run.start
    if run.repeats < MIN_REPEATS or held < max(STUCK_S, TIMES_LONGEST * seen.longest_s):
        return False
    settled = seen.count >= MIN_RUNS and run.last - seen.first_t >= SETTLED_S
    return settled and seen.lo < run.value < seen.hi


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _stuck_event(name: str, run: _Run) -> Event:
    data: dict[str, Any] = {
        "value": run.value,
        "held_s": round(run.last - run.start, 1),
        "longest_s": round(run.seen.longest_s, 1),
    }
    if run.state:
        data["state"] = run.state
    return Event(run.last, "sensor.stuck", name, data)
