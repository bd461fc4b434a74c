"""Reading memory back for a wake's look: each field's numbers as an array, from the rows
committed and from the batch not committed yet alike."""

from __future__ import annotations

import numpy as np

from agent.memory.recall import Recall
from agent.memory.store import MemoryStore
from agent.samples import Sample


def test_columns_are_each_fields_numbers_and_flags_committed_or_not(store: MemoryStore) -> None:
    store.record(Sample("system", 10.0, {"cpu_pct": 12.5, "load1": "high", "charging": True}))
    store.record(Sample("system", 20.0, {"cpu_pct": 3, "load1": "12"}))
    store.record(Sample("battery", 25.0, {"cpu_pct": 99.0}))  # another sensor's
    store.flush()
    store.record(Sample("system", 30.0, {"cpu_pct": 7.25, "load1": 0.5, "charging": False}))
    assert store.pending()[0], "the last sample is not committed yet"

    times, columns = Recall(store).columns("system", ["cpu_pct", "load1", "charging"], 0.0, 30.0)

    assert times.tolist() == [10.0, 20.0, 30.0]
    assert columns["cpu_pct"].tolist() == [12.5, 3.0, 7.25]
    load = columns["load1"]  # text is no number, not even "12": streams leave it out too
    assert np.isnan(load[0]) and np.isnan(load[1]) and load[2] == 0.5
    charging = columns["charging"]  # flags count 1 and 0; a sample without one, NaN
    assert charging[0] == 1.0 and np.isnan(charging[1]) and charging[2] == 0.0


def test_series_keeps_the_numbers_of_one_stream_within_the_span(store: MemoryStore) -> None:
    for t, cpu in ((5.0, 1.0), (10.0, None), (15.0, 2.0), (20.0, 3.0)):
        store.record(Sample("system", t, {"cpu_pct": cpu} if cpu is not None else {}))
    store.flush()
    times, values = Recall(store).series("system.cpu_pct", 6.0, 20.0)
    assert times.tolist() == [15.0, 20.0] and values.tolist() == [2.0, 3.0]
    empty_t, empty_v = Recall(store).series("system.cpu_pct", 100.0, 200.0)
    assert empty_t.shape == (0,) and empty_v.shape == (0,)
