"""``vigil doctor``: what works on this machine: sensors, model runtime, the larger model,
energy sources, database and service. Each check says why; only a sensor the config asks for
outright that cannot work, or a larger model configured in a way that cannot work, makes it
fail."""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agent.clock import sleep
from agent.config import Config
from agent.errors import SensorReadError, SensorUnavailable, StorageError
from agent.samples import Sample
from agent.sensors import plan_sensors

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

#: How long after its first reading each sensor is read again.
SECOND_READING_S = 0.5


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    ok: bool
    detail: str
    #: A failure here makes ``vigil doctor`` exit non-zero.
    required: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_sensors(
    config: Config,
    now: float,
    *,
    termux: bool,
    environ: Mapping[str, str],
    fields: dict[str, set[str]] | None = None,
) -> list[Check]:
    """Each sensor read twice, ``SECOND_READING_S`` apart: the CPU use and the rates are
    differences between two readings, so a first reading alone would not show them. Each
    working sensor's field names go into ``fields``."""
    plans = plan_sensors(config, termux=termux, environ=environ)
    first: dict[str, Sample | None] = {}
    failed: dict[str, str] = {}
    try:
        for plan in plans:
            if plan.sensor is not None:
                try:
                    first[plan.name] = plan.sensor.read(now)
                except (SensorUnavailable, SensorReadError) as exc:
                    failed[plan.name] = exc.reason
        if first:
            sleep(SECOND_READING_S)
        checks = []
        for plan in plans:
            if plan.sensor is None or plan.name in failed:
                reason = failed.get(plan.name, plan.reason)
                checks.append(Check("sensor", plan.name, False, reason, plan.required))
                continue
            sample = first[plan.name]
            try:
                sample = plan.sensor.read(now + SECOND_READING_S) or sample
            except (SensorUnavailable, SensorReadError):
                pass  # the first reading worked: that is what this check is about
            names = sorted(sample.data) if sample is not None else []
            if fields is not None:
                fields[plan.name] = set(names)
            shown = ", ".join(names) if names else "no reading yet"
            checks.append(Check("sensor", plan.name, True, f"{plan.reason}; fields: {shown}"))
        return checks
    finally:
        for plan in plans:
            if plan.sensor is not None:
                plan.sensor.close()


def check_runtime(model: str = "", own: bool = False) -> list[Check]:
    """The TFLite interpreters vigil can load models with, best first."""
    for module, dist, how in (
        ("ai_edge_litert", "ai-edge-litert", "LiteRT"),
        ("tflite_runtime", "tflite-runtime", "tflite_runtime (Termux)"),
    ):
        if importlib.util.find_spec(module) is not None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                version = "version unknown"
            return [Check("runtime", "tflite", True, f"{how} {version}"), _check_model(model, own)]
    from agent.detect.tflite import no_runtime

    return [
        Check(
            "runtime",
            "tflite",
            False,
            no_runtime(),
        )
    ]


def _check_model(path: str = "", own: bool = False) -> Check:
    """The configured tiny model (``[anomaly] model``; empty: the shipped, pinned one)."""
    from agent.detect.tflite import load_model
    from agent.errors import ModelError

    name = f"model {path}" if path else "model tiny"
    try:
        model = load_model(Path(path).expanduser() if path else "tiny", own=own)
    except ModelError as exc:
        return Check("runtime", name, False, str(exc))
    card = model.card
    return Check("runtime", name, True, f"{card.size_bytes} B, sha256 {card.sha256[:12]}")


def check_energy(sensor_checks: list[Check], powercap: str = "/sys/class/powercap") -> list[Check]:
    """Where measured energy can come from: RAPL counters, the battery's power reading.
    Without either, the power report estimates (CPU time x a coefficient) and says so."""
    from agent.power.rapl import find_rapl

    found = find_rapl(powercap)
    if found.counter is not None:
        rapl = Check("energy", "rapl", True, f"{found.counter.label} readable")
        found.counter.close()
    else:
        rapl = Check("energy", "rapl", False, found.reason)
    battery = next((c for c in sensor_checks if c.name == "battery"), None)
    has_power = battery is not None and battery.ok and "power_W" in battery.detail
    power = Check(
        "energy",
        "battery power",
        has_power,
        "battery reports power_W" if has_power else "no battery power reading",
    )
    return [rapl, power]


def check_database(db_path: str) -> list[Check]:
    from sqlalchemy.exc import SQLAlchemyError

    from agent.memory.db import current_revision, head_revision, open_engine

    path = Path(db_path.removeprefix("sqlite:///"))
    head = head_revision()
    if not path.exists():
        return [Check("database", "memory", False, f"{path}: not created yet (vigil init)")]
    try:
        engine = open_engine(path)
        revision = current_revision(engine)
        weights = _personalised(engine) if revision == head else None
        engine.dispose()
    except StorageError as exc:
        return [Check("database", "memory", False, str(exc))]
    except SQLAlchemyError as exc:  # not a SQLite file, or a damaged one
        reason = getattr(exc, "orig", None) or exc
        return [Check("database", "memory", False, f"{path}: cannot be read: {reason}")]
    ok = revision == head
    detail = f"{path}: schema {revision} (head {head})"
    checks = [Check("database", "memory", ok, detail if ok else detail + "; vigil db upgrade")]
    if weights is not None:
        checks.append(Check("database", "personalisation", True, weights))
    checks.append(check_private(path))
    return checks


def check_private(db: Path) -> Check:
    """The memory holds the user's places and habits: its folder and files must be the
    user's alone (vigil makes them so; a folder shared with a program's install, or made
    by hand, may not be)."""
    folder = db.parent
    files = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", ".lock"))]
    loose = [p for p in [folder, *files] if p.exists() and p.stat().st_mode & 0o077]
    if not loose:
        return Check("database", "private", True, f"{folder} 0700, files 0600")
    said = ", ".join(f"{p} is {p.stat().st_mode & 0o777:04o}" for p in loose)
    fix = f"chmod 700 {folder}; chmod 600 {db}*"
    return Check("database", "private", False, f"others can read it: {said} ({fix})")


def _personalised(engine: Engine) -> str:
    """The tiny model's personalised weights in the memory, in words."""
    from sqlalchemy import select

    from agent.memory import schema
    from agent.samples import from_us

    with engine.connect() as conn:
        row = conn.execute(select(schema.model_weights)).first()
    if row is None:
        return "none yet: the shipped weights (a round needs 512 normal windows, every 6 h)"
    when = datetime.fromtimestamp(from_us(row.trained_us), UTC).isoformat(timespec="seconds")
    return (
        f"{row.model}: round {row.rounds} kept at {when} on {row.windows} windows, "
        f"held-out error {row.loss_before:.4f} -> {row.loss_after:.4f}"
    )


def check_service(*, termux: bool, environ: Mapping[str, str]) -> list[Check]:
    from agent.runtime.service import service_paths

    paths = service_paths(termux=termux, environ=environ)
    present = [p for p in paths if p.exists()]
    if present:
        return [Check("service", "installed", True, ", ".join(map(str, present)))]
    return [
        Check("service", "installed", False, f"not installed ({paths[-1]}): vigil service install")
    ]


def check_larger_model(config: Config) -> list[Check]:
    """Which larger model the wakes would ask, or why none (the diagnosis stands alone)."""
    from agent.clock import SystemClock
    from agent.errors import ConfigError
    from agent.escalation.backends import make_backend

    try:
        backend, about = make_backend(config.escalation, SystemClock())
    except ConfigError as exc:
        return [Check("escalation", "larger model", False, exc.reason, required=True)]
    return [Check("escalation", "larger model", backend is not None, about)]


def check_rules(config: Config) -> list[Check]:
    """Whether the config's wake rules include every default one: a ``[[rules]]`` list
    written before a default rule was added replaces the defaults without it."""
    from agent.config import DEFAULT_RULES, missing_default_rules

    if config.rules == DEFAULT_RULES:
        return [Check("config", "default rules", True, "the defaults")]
    missing = [r.name for r in missing_default_rules(config.rules)]
    if not missing:
        detail = f"the config's {len(config.rules)} rules include every default one"
        return [Check("config", "default rules", True, detail)]
    detail = (
        f"the config's [[rules]] leave out {', '.join(missing)} (default rules its list "
        "replaces, added since it was written, or left out on purpose): "
        "vigil init --add-rules appends them"
    )
    return [Check("config", "default rules", False, detail)]


def check_rule_streams(config: Config, fields: Mapping[str, set[str]]) -> list[Check]:
    """Whether each rule's stream came in the sensor's two readings here: a rule on a
    misspelt stream ("system.cpu_percent") never fires, and nothing else would say so. A
    stream may also be absent for now (a VPN's interface while it is down, a disk unplugged):
    the check says what it saw. Only sensors read here are judged, and the default rules'
    streams are known names (a machine without a temperature sensor has no
    ``system.temp_C``, and its sensor check says what it has)."""
    from agent.config import DEFAULT_RULES

    known = {r.stream for r in DEFAULT_RULES}
    unknown = []
    for rule in config.rules:
        if rule.stream is None or rule.stream in known:
            continue
        sensor, _, field = rule.stream.partition(".")
        given = fields.get(sensor)
        if given is None or field in given:
            continue
        close = difflib.get_close_matches(field, sorted(given), n=1)
        guess = f" (did you mean {sensor}.{close[0]}?)" if close else ""
        unknown.append(f"rule {rule.name}: the {sensor} sensor gave no {field} here{guess}")
    if not unknown:
        return []
    detail = "; ".join(unknown) + " (a rule fires only on a stream that comes)"
    return [Check("config", "rule streams", False, detail)]


def run_checks(
    config: Config, db_path: str, now: float, *, termux: bool, environ: Mapping[str, str]
) -> list[Check]:
    fields: dict[str, set[str]] = {}
    sensors = check_sensors(config, now, termux=termux, environ=environ, fields=fields)
    return [
        *sensors,
        *check_runtime(config.anomaly.model, config.anomaly.own_model),
        *check_larger_model(config),
        *check_rules(config),
        *check_rule_streams(config, fields),
        *check_energy(sensors),
        *check_database(db_path),
        *check_service(termux=termux, environ=environ),
    ]
