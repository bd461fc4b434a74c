"""The collector runs rarely while samples flow, and as before once they stop."""

from __future__ import annotations

import gc

from agent.runtime.collector import YOUNG_EVERY, fewer_collections


def test_collections_are_rarer_inside_and_as_before_after() -> None:
    before = gc.get_threshold()
    alive = [object() for _ in range(10)]
    with fewer_collections():
        assert gc.get_threshold() == (YOUNG_EVERY, before[1], before[2])
        assert gc.get_freeze_count() >= len(alive)  # start-up's objects walked no more
        young = gc.get_stats()[0]["collections"]
        cycles = []
        for _ in range(YOUNG_EVERY // 2):  # tracked allocations, fewer than one young round
            pair: list[object] = []
            pair.append(pair)
            cycles.append(pair)
        assert gc.get_stats()[0]["collections"] == young
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_collector_is_restored_when_the_block_fails() -> None:
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
