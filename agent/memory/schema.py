"""The SQLite schema: the Alembic target. Times are integer UTC microseconds (``t_us``)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
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
