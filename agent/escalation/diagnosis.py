"""The deterministic diagnosis: a wake's context -> a cause from a fixed list, the culprit and
the facts that show it. Pure: the same context always gives the same diagnosis, so
``wake.done`` (which carries it) replays exactly; the larger model only rewrites it.

How a cause is chosen, root causes before their consequences:

1. a stream the triggers name that is stuck (``sensor.stuck``, which judges a run against the
   stream's own runs in the same state; else one exact value for 5 minutes and twice as long
   as ever before) or impossible is a **sensor_fault** (its readings are not facts);
2. arrival at a place never seen before is an **unusual_place**;
3. swap beyond its usual range is **swap_pressure**, else memory beyond it **memory_growth**
   (a machine short of memory swaps, which keeps the disk and the CPU busy and the battery
   draining), where the level rose into the incident (by its usual range's width over the
   half hour before): levels hold, and swap kept for hours after a storm is not this one;
   else a process the pipeline found taking memory faster than in its last 4 days
   (``process.grow``) is **memory_growth**, and the culprit (a leak's first minutes, the
   machine's memory still within its usual range);
4. a temperature beyond what this CPU load usually gives is **overheating** (where the
   machine never ran at this load, the CPU explains the heat), and so is a temperature the
   pipeline found far above its load's usual (``heat.high``); on battery, power beyond what
   the battery usually gives is a **battery_drain**, whatever draws it: on battery, the drain
   is what the user pays for; so is a process the pipeline found busier on battery than on
   battery in its last 4 days (``process.drain``), and the culprit;
5. else a rate the pipeline found at 1.5 times its 4-day record for a quarter of an hour,
   or far past this hour's on the days before (``volume.high``), names its
   **network_burst** or **disk_burst** (the CPU a transfer takes is its consequence);
6. else a process the pipeline found busier in the background for a quarter of an hour
   than in the last 4 days, by half again (``process.busy``), is a **cpu_runaway**, and the
   culprit;
7. else the largest of CPU (**cpu_runaway**), network (**network_burst**) and disk
   (**disk_burst**) beyond their usual ranges: by the usual range's width, and for rates ten
   times the usual 95th percentile (their quiet and busy levels are orders of magnitude apart);
8. when nothing is that far beyond its usual range yet (a leak's first minutes), the cause
   the streams named by the triggers speak for, if one is above its usual 95th percentile
   (``apps.mem2_pct``: a process's memory);
9. a value usual for the day but not for this hour is an **unusual_time**; else **unknown**.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.escalation.context import Context, ProcessFacts, StreamFacts
from agent.memory.recall import split_stream

CAUSES = (
    "cpu_runaway",
    "memory_growth",
    "swap_pressure",
    "network_burst",
    "disk_burst",
    "overheating",
    "battery_drain",
    "unusual_place",
    "unusual_time",
    "sensor_fault",
    "unknown",
)
#: How far beyond its usual 95th percentile a stream must be, in widths of its usual 5-95 %
#: range, to count as the cause.
BEYOND = 1.0
#: A temperature (°C) this far above what the load usually gives at most (its 95th
#: percentile there), or ``HOT_OVER_MEDIAN_C`` above its median there: an earlier blocked
#: fan at the same load fills the upper tail for a week, not the middle.
HOT_MARGIN_C = 5.0
HOT_OVER_MEDIAN_C = 15.0
#: A stream repeating one exact value this long, and twice as long as it ever did in the
#: usual period, is stuck.
STUCK_S = 300.0
#: Values no working sensor reports.
_POSSIBLE = {"temp_C": (-40.0, 130.0), "battery_pct": (0.0, 100.0), "cpu_pct": (0.0, 100.0)}
#: What failed sensors and drivers report instead of a reading (a zeroed register, an
#: 8-bit code's limits): one of these, held, where the stream never goes, is not a fact.
SENTINELS = frozenset({0.0, 127.0, -127.0, -128.0, 255.0})
SENTINEL_HELD_S = 30.0
_MEASURED = ("_C", "_V", "_W", "_A", "_pct")


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    culprit: str | None
    culprit_kind: str | None  # process, app, place, sensor
    facts: tuple[str, ...]  # plain sentences of fact: the evidence, and the model's input
    summary: str
    advice: str
    numbers: dict[str, Any] = field(default_factory=dict)  # the figures behind the facts

    def evidence(self) -> dict[str, Any]:
        return {"facts": list(self.facts), **self.numbers}


def diagnose(ctx: Context) -> Diagnosis:
    when = f"{_clock(ctx.hour_utc)} UTC on {ctx.weekday}"
    fault = _sensor_fault(ctx)
    if fault is not None:
        return _sensor_diagnosis(ctx, fault, when)
    if ctx.place is not None and ctx.place.new:
        return _place_diagnosis(ctx, when)
    found = _resource_cause(ctx) or _named_cause(ctx)
    if found is not None:
        cause, stream = found
        return _resource_diagnosis(ctx, cause, stream, when)
    odd_hour = next((s for s in ctx.streams if s.involved and _odd_hour(s)), None)
    if odd_hour is not None:
        return _resource_diagnosis(ctx, "unusual_time", odd_hour, when)
    facts = [f"At {when}, {_trigger_words(ctx)}."]
    facts += [_capital(_stream_sentence(s)) for s in ctx.streams if s.involved][:3]
    return Diagnosis(
        "unknown",
        None,
        None,
        tuple(facts),
        f"Something unusual at {when} ({_trigger_words(ctx)}); no cause stands out.",
        "Look at the events around this time: vigil events --since 2h.",
    )


# -- the causes --------------------------------------------------------------------------------
def _sensor_fault(ctx: Context) -> StreamFacts | None:
    for name in _said_stuck(ctx):  # the pipeline judged it stuck against its own state's runs
        named = ctx.stream(name)
        if named is not None:
            return named
    for s in ctx.streams:
        if not s.involved or s.last is None or s.stream.startswith("apps."):
            continue  # apps' fields rank processes: a share held steady is no fault
        lo_hi = _POSSIBLE.get(split_stream(s.stream)[1])
        if lo_hi is not None and not lo_hi[0] <= s.last <= lo_hi[1]:
            return s
        if _stuck(s) or _sentinel(s):
            return s
    return None


def _said_stuck(ctx: Context) -> list[str]:
    """The streams a ``sensor.stuck`` trigger names."""
    return [str(t["subject"]) for t in ctx.triggers if t["event"] == "sensor.stuck"]


def _sentinel(s: StreamFacts) -> bool:
    measured = s.stream.endswith(_MEASURED)  # a flag's 0 (charging) is a value, not a code
    if not measured or s.last not in SENTINELS or s.usual is None:
        return False
    if s.stuck_s < SENTINEL_HELD_S:
        return False
    return not s.usual[0] <= s.last <= s.usual[2]


def _stuck(s: StreamFacts) -> bool:
    varies = s.usual is not None and s.usual[2] > s.usual[0]
    return varies and s.stuck_s >= max(STUCK_S, 2.0 * s.longest_run_s)


def _resource_cause(ctx: Context) -> tuple[str, StreamFacts] | None:
    for cause in ("swap_pressure", "memory_growth"):
        best = _strongest(ctx, _SUFFIXES[cause])
        if best is not None and _excess(best) >= BEYOND and _risen(best):
            return cause, best
    memory = ctx.stream("system.mem_used_pct")
    if memory is not None and _named_processes(ctx, "process.grow"):
        return "memory_growth", memory
    temp = ctx.stream("system.temp_C")
    if temp is not None and any(t["event"] == "heat.high" for t in ctx.triggers):
        return "overheating", temp  # the pipeline found it hotter than its load's usual
    if temp is not None and _beyond_load(temp) and _excess(temp) >= BEYOND:
        return "overheating", temp
    power = ctx.stream("battery.power_W")
    if power is not None and _on_battery(ctx):
        if _excess(power) >= BEYOND or _named_processes(ctx, "process.drain"):
            return "battery_drain", power
    volume = _volume_cause(ctx)
    if volume is not None:
        return volume
    cpu = ctx.stream("system.cpu_pct")
    if cpu is not None and _named_processes(ctx, "process.busy"):
        return "cpu_runaway", cpu
    ranked = []
    for cause in ("cpu_runaway", "network_burst", "disk_burst"):
        best = _strongest(ctx, _SUFFIXES[cause])
        if best is not None and _excess(best) >= BEYOND:
            ranked.append((_excess(best), cause, best))
    if not ranked:
        return None
    _, cause, stream = max(ranked, key=lambda r: r[0])
    return cause, stream


def _named_processes(ctx: Context, event: str) -> list[str]:
    """The processes the triggers of kind ``event`` name: ``process.busy``, busier in the
    background than their own record (a runaway nobody is looking at); ``process.drain``,
    busier on battery than their own record on battery (what empties it); ``process.grow``,
    taking memory faster than their own record (a leak)."""
    return [str(t["subject"]) for t in ctx.triggers if t["event"] == event]


def _volume_cause(ctx: Context) -> tuple[str, StreamFacts] | None:
    """A rate the pipeline found moving 1.5 times its 4-day record for a quarter of an hour,
    or far past its hour's (``volume.high``), speaks for its family, a network or disk
    burst: the volume is the finding, and the CPU the transfer takes is its consequence.
    The largest against its record when several."""
    found = []
    for trigger in ctx.triggers:
        if trigger["event"] != "volume.high":
            continue
        s = ctx.stream(str(trigger["subject"]))
        data = trigger["data"]
        cause = _family(split_stream(str(trigger["subject"]))[1])
        if s is not None and cause in ("network_burst", "disk_burst"):
            ratio = float(data.get("mean_Bps", 0.0)) / max(float(data.get("record_Bps", 0.0)), 1.0)
            found.append((ratio, cause, s))
    if not found:
        return None
    _, cause, stream = max(found, key=lambda f: f[0])
    return cause, stream


#: The cause a stream speaks for, by the end of its name.
_FAMILIES = (
    ("cpu_runaway", ("cpu_pct", "load1")),
    ("memory_growth", ("mem_used_pct",)),
    ("swap_pressure", ("swap_pct",)),
    ("network_burst", ("rx_Bps", "tx_Bps")),
    ("disk_burst", ("read_Bps", "write_Bps")),
    ("overheating", ("temp_C",)),
    ("battery_drain", ("power_W",)),
)
_SUFFIXES = dict(_FAMILIES)


def _family(field: str) -> str | None:
    """The cause a field speaks for (``rx_Bps``: a network burst), if any."""
    return next((cause for cause, suffixes in _FAMILIES if field.endswith(suffixes)), None)


def _named_cause(ctx: Context) -> tuple[str, StreamFacts] | None:
    """When no vital is beyond its usual range yet (a leak's first minutes), the cause the
    always-on tier's own finding speaks for: the family of the stream the triggers name that
    is furthest above its usual 95th percentile (``apps.mem2_pct``: a process's memory)."""
    named = []
    for s in ctx.streams:
        if not s.involved or s.usual is None:
            continue
        field = s.stream.rsplit(".", 1)[-1]
        if s.stream.startswith("apps.cpu"):  # the busiest processes' shares
            field = "cpu_pct"
        elif s.stream.startswith("apps.mem"):  # the largest processes' shares
            field = "mem_used_pct"
        cause = _family(field)
        if cause is not None and (field != "power_W" or _on_battery(ctx)):
            named.append((_excess(s), cause, s))
    if not named:
        return None
    excess, cause, stream = max(named, key=lambda n: n[0])
    return (cause, stream) if excess > 0.0 else None


def _on_battery(ctx: Context) -> bool:
    return ctx.battery is not None and ctx.battery.charging is False


def _strongest(ctx: Context, suffixes: tuple[str, ...]) -> StreamFacts | None:
    """The stream ending in one of ``suffixes`` that is furthest beyond its usual range
    (``system.net.wlan0.rx_Bps`` counts for ``rx_Bps``)."""
    found = [
        s
        for s in ctx.streams
        if split_stream(s.stream)[0] == "system" and split_stream(s.stream)[1].endswith(suffixes)
    ]
    return max(found, key=_excess, default=None)


def _excess(s: StreamFacts) -> float:
    """How far the peak is above the usual 95th percentile: in widths of the usual 5-95 %
    range, or for rates (bytes per second, whose quiet and busy levels are orders of magnitude
    apart) in factors of ten; 0 without a usual range."""
    if s.usual is None or s.peak is None:
        return 0.0
    lo, mid, hi = s.usual
    if s.stream.endswith("_Bps"):
        return math.log10((1.0 + max(s.peak, 0.0)) / (1.0 + max(hi, 0.0)))
    width = max(hi - lo, 0.05 * abs(mid), 1e-6)
    return (s.peak - hi) / width


def _risen(s: StreamFacts) -> bool:
    """Whether a level rose into the incident: its peak above the lowest value of the half
    hour before by the width of its usual range. Levels hold (swap stays in use for hours
    after a storm has passed): one reached before and kept is not what is happening now.
    Nothing recorded before: yes."""
    if not s.before or s.usual is None or s.peak is None:
        return True
    lo, mid, hi = s.usual
    return s.peak - min(s.before) >= BEYOND * max(hi - lo, 0.05 * abs(mid), 1e-6)


def _beyond_load(s: StreamFacts) -> bool:
    """Beyond what the machine's usual values at this CPU load give (a stream's 95th
    percentile at a CPU within 10 points of the incident's, by ``HOT_MARGIN_C``; or its
    median there, by ``HOT_OVER_MEDIAN_C``). Never seen at this load: no."""
    if s.at_load is None or s.peak is None or s.at_load[2] < 10:
        return False
    median, p95, _ = s.at_load
    return s.peak > p95 + HOT_MARGIN_C or s.peak > median + HOT_OVER_MEDIAN_C


def _odd_hour(s: StreamFacts) -> bool:
    if s.usual is None or s.hour is None or s.peak is None:
        return False
    width = max(s.hour[1] - s.hour[0], 1e-6)
    return s.peak <= s.usual[2] and s.peak > s.hour[1] + width


# -- the culprits and the words ----------------------------------------------------------------
def _culprit(ctx: Context, cause: str) -> ProcessFacts | None:
    procs = list(ctx.processes)
    if not procs:
        return None
    if cause == "memory_growth":
        grew = _named_processes(ctx, "process.grow")
        named = [p for p in procs if p.name in grew] or procs
        return max(named, key=lambda p: (p.mem_pct - p.mem_before_pct, p.mem_pct))
    if cause == "swap_pressure":
        return max(procs, key=lambda p: (p.mem_pct, p.name))
    if cause in ("network_burst", "disk_burst"):
        risen = [p for p in procs if p.cpu_pct > 0.0]
        return max(risen, key=lambda p: (p.cpu_pct - p.cpu_before_pct, p.cpu_pct), default=None)
    event = {"cpu_runaway": "process.busy", "battery_drain": "process.drain"}.get(cause)
    found = _named_processes(ctx, event) if event is not None else []
    busy = [p for p in procs if p.name in found] or [p for p in procs if p.cpu_pct > 0.0]
    return busy[0] if busy else None  # processes come sorted by CPU


#: Per cause: its title, the advice naming the culprit, and the advice without one.
_WHAT = {
    "cpu_runaway": (
        "CPU runaway",
        "If {c} should not be running now, stop it.",
        "Find the process that keeps the CPU busy (top) and stop it if it should not run.",
    ),
    "memory_growth": (
        "Memory growth",
        "{c} keeps growing: restart it before the machine swaps.",
        "Find the process that keeps growing (top, by memory) and restart it.",
    ),
    "swap_pressure": (
        "Swap pressure",
        "Close {c} or give it less memory: the machine swaps.",
        "Close what holds the most memory: the machine swaps.",
    ),
    "network_burst": (
        "Network burst",
        "Check what {c} is sending or receiving.",
        "Check which program is sending or receiving so much.",
    ),
    "disk_burst": (
        "Disk burst",
        "Check what {c} is reading or writing; pause it if need be.",
        "Check which program is reading or writing so much.",
    ),
    "overheating": (
        "Overheating",
        "Let the machine cool: check its vents, and what {c} does.",
        "Let the machine cool: check its vents and fans.",
    ),
    "battery_drain": (
        "Battery drain",
        "Plug in, or stop {c} to save the battery.",
        "Plug in, or close what runs in the background.",
    ),
    "unusual_time": (
        "Unusual hour",
        "{c} is busy at an unusual hour: check that you expected it.",
        "The machine is busy at an unusual hour: check that you expected it.",
    ),
}


def _resource_diagnosis(ctx: Context, cause: str, s: StreamFacts, when: str) -> Diagnosis:
    proc = _culprit(ctx, cause)
    culprit, kind = (proc.name, "process") if proc is not None else (ctx.focused_app, "app")
    title, advice, no_culprit = _WHAT[cause]
    facts = [f"At {when}, {_stream_sentence(s)}"]
    if proc is not None:
        facts.append(_process_sentence(proc, cause))
    elif ctx.focused_app is not None:
        facts.append(f"The app in front was {ctx.focused_app}.")
    others = [x for x in ctx.streams if x.involved and x.stream != s.stream][:2]
    facts += [_capital(_stream_sentence(x)) for x in others]
    who = culprit if culprit is not None else "no process stands out"
    summary = f"{title}: {who}; {_stream_sentence(s)}"
    return Diagnosis(
        cause,
        culprit,
        kind if culprit is not None else None,
        tuple(facts),
        summary,
        advice.format(c=culprit) if culprit is not None else no_culprit,
        {"stream": asdict_stream(s), "process": asdict(proc) if proc else None},
    )


def _sensor_diagnosis(ctx: Context, s: StreamFacts, when: str) -> Diagnosis:
    field_name = split_stream(s.stream)[1]
    if s.stream in _said_stuck(ctx) or _stuck(s):
        what = f"has read exactly {_fmt(s.last, field_name)} for {s.stuck_s / 60:.0f} minutes"
    else:
        what = f"read {_fmt(s.last, field_name)}, which no working sensor reports"
    fact = f"At {when}, the sensor {s.stream} {what}."
    return Diagnosis(
        "sensor_fault",
        s.stream,
        "sensor",
        (fact, _usual_sentence(s)),
        f"Sensor fault: {s.stream} {what}.",
        f"Check the sensor behind {s.stream}; its readings are not to be trusted now.",
        {"stream": asdict_stream(s)},
    )


def _place_diagnosis(ctx: Context, when: str) -> Diagnosis:
    place = ctx.place
    assert place is not None
    far = (
        f", {place.nearest_known_m / 1000:.1f} km from the nearest known place"
        if place.nearest_known_m is not None
        else ""
    )
    fact = f"At {when}, the device arrived at {place.name}, a place never visited before{far}."
    return Diagnosis(
        "unusual_place",
        place.name,
        "place",
        (fact,),
        f"Unusual place: arrived at {place.name}{far}.",
        "Nothing to do if you meant to be here; otherwise check where the device is.",
        {"place": asdict(place)},
    )


def asdict_stream(s: StreamFacts) -> dict[str, Any]:
    return {
        "stream": s.stream,
        "peak": s.peak,
        "usual": list(s.usual) if s.usual else None,
        "excess": round(_excess(s), 3),
    }


def _stream_sentence(s: StreamFacts) -> str:
    field_name = split_stream(s.stream)[1]
    if s.stream in ("location.lat", "location.lon"):  # no coordinates in words: they leave
        return "the position was outside the area it usually keeps to."
    name = _plain_name(s.stream)
    text = f"the {name} reached {_fmt(s.peak, field_name)}"
    if s.usual is not None:
        text += f", usually {_fmt(s.usual[0], field_name)} to {_fmt(s.usual[2], field_name)}"
    return text + "."


def _usual_sentence(s: StreamFacts) -> str:
    field_name = split_stream(s.stream)[1]
    if s.usual is None:
        return f"{s.stream} has no usual range yet."
    lo, hi = _fmt(s.usual[0], field_name), _fmt(s.usual[2], field_name)
    return f"{s.stream} usually reads {lo} to {hi}."


def _process_sentence(p: ProcessFacts, cause: str) -> str:
    if cause == "memory_growth":
        grew = f"{p.mem_before_pct:.0f} % to {p.mem_pct:.0f} %"
        return f"The process {p.name} grew from {grew} of memory."
    if cause == "swap_pressure":
        return f"The process {p.name} held {p.mem_pct:.0f} % of memory."
    return f"The process {p.name} used {p.cpu_pct:.0f} % CPU (before: {p.cpu_before_pct:.0f} %)."


def _trigger_words(ctx: Context) -> str:
    words = [f"{t['event']} {t['subject']}" for t in ctx.triggers if t.get("event")]
    return ", ".join(words) or "a rule fired"


def _plain_name(stream: str) -> str:
    """What a stream is, in words (a small model copies what it is given)."""
    sensor, field_name = split_stream(stream)
    if sensor == "apps":
        kind, rank = field_name[:3], field_name[3:].split("_")[0]
        which = {"1": "", "2": "second ", "3": "third "}.get(rank, f"#{rank} ")
        if kind == "cpu":
            return f"{which}busiest process's CPU use"
        return f"{which}largest process's memory share"
    if sensor == "metric":
        return f"metric {stream}"
    return _NAMES.get(field_name, field_name.replace("_", " "))


_NAMES = {
    "cpu_pct": "CPU use",
    "load1": "load",
    "mem_used_pct": "memory use",
    "swap_pct": "swap use",
    "temp_C": "temperature",
    "power_W": "battery power",
    "battery_pct": "battery level",
    "rx_Bps": "download rate",
    "tx_Bps": "upload rate",
    "net_rx_Bps": "download rate",
    "net_tx_Bps": "upload rate",
    "disk_read_Bps": "disk read rate",
    "disk_write_Bps": "disk write rate",
    "voltage_V": "battery voltage",
    "current_A": "battery current",
    "charging": "charging state (1 charging, 0 not)",
    "lat": "latitude",
    "lon": "longitude",
    "accuracy_m": "location accuracy",
}


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _fmt(value: float | None, field_name: str) -> str:
    if value is None:
        return "nothing"
    if field_name.endswith("_Bps"):
        return f"{value / 1e6:.2g} MB/s" if value >= 1e4 else f"{value / 1e3:.2g} kB/s"
    if field_name.endswith("_pct"):
        return f"{value:.0f} %"
    if field_name.endswith("_C"):
        return f"{value:.0f} °C"
    if field_name.endswith("_W"):
        return f"{value:.1f} W"
    return f"{value:.3g}"


def _clock(hour: float) -> str:
    minutes = round(hour * 60.0)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
