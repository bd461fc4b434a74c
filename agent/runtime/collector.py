"""The cyclic garbage collector, run less often while samples flow.

The stages keep many small tracked objects (history queues, per-stream state), so Python's
default collector (a young collection every 700 allocations, a full one every 100 of those)
spent about a fifth of a replay's CPU walking objects that live for days. vigil makes few
reference cycles, so collecting rarely costs little memory: the objects alive at start-up
(modules, the model runtime, SQLAlchemy) are frozen out of every collection, and a young
collection waits for 10,000 allocations.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young collections (Python's default is 700).
YOUNG_EVERY = 10_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Freeze what is alive now and collect rarely until the block ends (then as before)."""
    before = gc.get_threshold()
    gc.collect()  # freeze only what is alive, not start-up's garbage
    gc.freeze()
    gc.set_threshold(YOUNG_EVERY, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
