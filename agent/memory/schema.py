"""The SQLite schema: the Alembic target. Times are integer UTC microseconds (``t_us``)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Raw readings, one row per sample; ``data`` is the sample's fields as a JSON object.
samples = Table(
    "samples",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("t_us", Integer, nullable=False),
    Column("sensor", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_samples_sensor_t_us", "sensor", "t_us"),
)

#: What the pipeline concluded; ``data`` is a JSON object.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("t_us", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_events_t_us", "t_us"),
    Index("ix_events_kind_t_us", "kind", "t_us"),
)

#: Running totals: rejected lines per reason, sensor outages, storage retries...
counters = Table(
    "counters",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("value", Integer, nullable=False),
)

#: Small facts about the store itself (created_at, host...).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

#: Focused-app sessions: consecutive readings of one app (and title, when titles are kept)
#: merged, ActivityWatch's heartbeat style; one row per session, not per poll.
app_sessions = Table(
    "app_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(256), nullable=False),
    Column("title", Text, nullable=True),
    Column("start_us", Integer, nullable=False),
    Column("end_us", Integer, nullable=False),
    Column("polls", Integer, nullable=False),
    UniqueConstraint("app", "start_us"),
    Index("ix_app_sessions_start_us", "start_us"),
)

#: Geofences, the source of truth: one GeoJSON Feature per fence (``vigil fences``).
#: ``meta.fences_version`` goes up with every change, so a running daemon notices.
fences = Table(
    "fences",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("feature", Text, nullable=False),
)

#: Each fence's state machine (inside, since when...), kept across restarts.
fence_state = Table(
    "fence_state",
    metadata,
    Column("name", String(256), primary_key=True),
    Column("data", Text, nullable=False),
)

#: Learned places: merged stay points with their visits and total dwell.
places = Table(
    "places",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("radius_m", Float, nullable=False),
    Column("visits", Integer, nullable=False),
    Column("dwell_s", Float, nullable=False),
    Column("first_us", Integer, nullable=False),
    Column("last_us", Integer, nullable=False),
)

#: Other stages' state as JSON by stage name (the stay in progress, the anomaly stage's).
detector_state = Table(
    "detector_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("data", Text, nullable=False),
)

#: The tiny model's personalised weights (``np.savez`` bytes), one row per model, with the
#: sha256 of the model file they were trained from and the last kept training round.
model_weights = Table(
    "model_weights",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("weights", LargeBinary, nullable=False),
    Column("rounds", Integer, nullable=False),
    Column("trained_us", Integer, nullable=False),
    Column("windows", Integer, nullable=False),
    Column("loss_before", Float, nullable=False),
    Column("loss_after", Float, nullable=False),
)

#: Wakes of the larger model (ARCHITECTURE.md, stage 5): the triggers (rule.fired events as a JSON
#: list), when in sample time (``t_us``; ``start_us`` the first trigger), where from (daemon,
#: replay, explain), the backend and model (with its sha256), and what it cost, measured from
#: outside the child process: wall and CPU seconds, peak RSS, tokens. ``started_us`` is wall
#: time; ``status`` is running, done, template (the model's text was refused), failed,
#: stopped (the daemon stopped first) or none (no backend ran).
wakes = Table(
    "wakes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("t_us", Integer, nullable=False),
    Column("start_us", Integer, nullable=False),
    Column("triggers", Text, nullable=False),
    Column("origin", String(16), nullable=False),
    Column("backend", String(32), nullable=False),
    Column("model", Text, nullable=True),
    Column("model_sha256", String(64), nullable=True),
    Column("started_us", Integer, nullable=True),
    Column("wall_s", Float, nullable=True),
    Column("cpu_s", Float, nullable=True),
    Column("peak_rss_kb", Integer, nullable=True),
    Column("tokens_in", Integer, nullable=True),
    Column("tokens_out", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Index("ix_wakes_t_us", "t_us"),
)

#: What a wake found: the deterministic diagnosis (cause, culprit, evidence as JSON, the
#: template summary and advice) and the model's text as it came (``model_text``); ``text`` is
#: what is shown, the model's sentence when it passed the check, else the summary, and
#: ``check`` says why not.
findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wake_id", Integer, ForeignKey("wakes.id"), nullable=False, unique=True),
    Column("t_us", Integer, nullable=False),
    Column("cause", String(32), nullable=False),
    Column("culprit", String(256), nullable=True),
    Column("culprit_kind", String(16), nullable=True),
    Column("evidence", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("advice", Text, nullable=False),
    Column("model_text", Text, nullable=True),
    Column("text", Text, nullable=False),
    Column("text_source", String(16), nullable=False),
    Column("check", Text, nullable=True),
    Index("ix_findings_t_us", "t_us"),
)

#: CPU seconds and calls per stage of the agent, summed per hour of sample time (``hour_us``,
#: the hour's start) and origin (daemon, replay), written with the loop's normal commits.
#: Two components are totals, not stages: ``process`` is the whole process's CPU read from
#: ``/proc`` (the stages' sum falls short of it by what no stage owns: the unattributed line),
#: and ``node`` the whole machine's busy CPU seconds with, where RAPL is readable, the package
#: energy in ``energy_j``. ``covered_s`` is how much of the hour the ledger covered.
power_ledger = Table(
    "power_ledger",
    metadata,
    Column("hour_us", Integer, primary_key=True),
    Column("origin", String(16), primary_key=True),
    Column("component", String(64), primary_key=True),
    Column("cpu_s", Float, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("covered_s", Float, nullable=True),
    Column("energy_j", Float, nullable=True),
)

#: ``vigil power calibrate``: watts per busy core (``k_w``, with its 95 % interval) measured
#: against the machine's own energy source (``source``) in alternating busy and idle blocks.
power_calibrations = Table(
    "power_calibrations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("created_us", Integer, nullable=False),
    Column("device", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("k_w", Float, nullable=False),
    Column("ci_low_w", Float, nullable=False),
    Column("ci_high_w", Float, nullable=False),
    Column("idle_w", Float, nullable=False),
    Column("busy_w", Float, nullable=False),
    Column("blocks", Integer, nullable=False),
    Column("block_s", Float, nullable=False),
)
