"""Calibrations in the database (``power_calibrations``): save one, read the latest."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from agent.errors import StorageError
from agent.memory.schema import power_calibrations
from agent.power.calibrate import Calibration


@dataclass(frozen=True, slots=True)
class SavedCalibration(Calibration):
    """A stored calibration: its fields, its row id and when it was made."""

    id: int
    created_t: float  # UNIX seconds, UTC

    def calibration(self) -> Calibration:
        """The fields ``run_calibration`` gave, without the row's."""
        return Calibration(**{f.name: getattr(self, f.name) for f in fields(Calibration)})


def save_calibration(engine: Engine, cal: Calibration, created_t: float) -> int:
    """Store ``cal`` as made at ``created_t``; its row id."""
    row = {
        "created_us": round(created_t * 1_000_000),
        "device": cal.device,
        "source": cal.source,
        "k_w": cal.k_w,
        "ci_low_w": cal.ci_low_w,
        "ci_high_w": cal.ci_high_w,
        "idle_w": cal.idle_w,
        "busy_w": cal.busy_w,
        "blocks": cal.blocks,
        "block_s": cal.block_s,
    }
    try:
        with engine.begin() as conn:
            result = conn.execute(insert(power_calibrations).values(**row))
            key = result.inserted_primary_key
    except SQLAlchemyError as exc:
        raise StorageError(str(engine.url.database), str(exc)) from exc
    if key is None:
        raise StorageError(str(engine.url.database), "the calibration was not stored")
    return int(key[0])


def latest_calibration(engine: Engine, *, device: str | None = None) -> SavedCalibration | None:
    """The newest calibration (of ``device``, if given), or None."""
    t = power_calibrations.c
    query = select(power_calibrations).order_by(t.created_us.desc(), t.id.desc()).limit(1)
    if device is not None:
        query = query.where(t.device == device)
    try:
        with engine.connect() as conn:
            row = conn.execute(query).first()
    except SQLAlchemyError as exc:
        raise StorageError(str(engine.url.database), str(exc)) from exc
    if row is None:
        return None
    return SavedCalibration(
        k_w=row.k_w,
        ci_low_w=row.ci_low_w,
        ci_high_w=row.ci_high_w,
        idle_w=row.idle_w,
        busy_w=row.busy_w,
        blocks=row.blocks,
        block_s=row.block_s,
        source=row.source,
        device=row.device,
        id=row.id,
        created_t=row.created_us / 1_000_000,
    )
