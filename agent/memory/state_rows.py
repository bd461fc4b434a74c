"""The stages' typed state <-> the rows of the places and model_weights tables: the one place
that knows both (the pipeline speaks sample time in floats, the tables integer microseconds)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from agent.detect.personalise import Round, SavedWeights
from agent.detect.places import Place
from agent.samples import from_us, to_us


def place_row(place: Place) -> dict[str, Any]:
    row = asdict(place)
    row["first_us"], row["last_us"] = to_us(row.pop("first_t")), to_us(row.pop("last_t"))
    return row


def place_from_row(row: dict[str, Any]) -> Place:
    values = dict(row)
    first_us, last_us = values.pop("first_us"), values.pop("last_us")
    return Place(**values, first_t=from_us(int(first_us)), last_t=from_us(int(last_us)))


def weights_row(saved: SavedWeights) -> dict[str, Any]:
    last = saved.last
    return {
        "model": saved.model,
        "sha256": saved.sha256,
        "weights": saved.blob,
        "rounds": saved.rounds,
        "trained_us": to_us(last.t),
        "windows": last.windows,
        "loss_before": last.loss_before,
        "loss_after": last.loss_after,
    }


def weights_from_row(row: dict[str, Any]) -> SavedWeights:
    last = Round(
        from_us(row["trained_us"]),
        row["rounds"],
        row["windows"],
        row["loss_before"],
        row["loss_after"],
        kept=True,
    )
    return SavedWeights(row["model"], row["sha256"], bytes(row["weights"]), row["rounds"], last)
