"""A live sample's CPU on this tree against another checkout of vigil, in one process.

The live daemon feeds the pipeline one sample at a time, and a change to its cost of a few
per cent is below the spread of separate runs on a shared machine. So both trees are
imported into this one process (the other one's ``agent`` package loaded after this one's is
set aside), each pipeline is warmed on the first 14 days of the same generated laptop trace
(in replay's chunks), and the next ``--samples`` samples go to both one at a time, in
alternating blocks of ``--block``, so the machine's pace changes alike for both. Prints each
tree's CPU microseconds a sample and the ratio. ``--first other`` loads the other tree
first (the load order moves the ratio by a few per cent: run both). ``--per-device`` gives
the laptop one network interface's and one disk's rates besides the totals, as the system
sensor reports them with ``per_device = true`` (its default): 13 system streams, not 9.

The other checkout needs its compiled kernel (``pip install -e`` there, or the built
``agent/detect/_ranks*.so`` copied in): without it the comparison would be against the
slower numpy reference, and the script stops.

    python bench/live_compare.py --against ../vigil-old [--samples 40000] [--first other]
        [--warm-days 14] [--meter] [--per-device]
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

WARM_DAYS = 14
LIVE_DAYS = 2  # the live samples are drawn from the days after the warm-up


def in_turns(n: int, block: int, labels: Sequence[str]) -> Iterator[tuple[str, int, int]]:
    """(label, start, end) of ``n`` samples in blocks of ``block``, each block to every label
    in turn, the order reversed every other block (so the machine's pace changes alike)."""
    for index, start in enumerate(range(0, n, block)):
        for label in labels if index % 2 == 0 else labels[::-1]:
            yield label, start, min(start + block, n)


def feed_metered(pipeline: Any, meter: Any, samples: Sequence[Any]) -> Any:
    """``samples`` fed one at a time, lapped as the daemon's loop laps them (a ``source`` lap
    before each, a ``storage`` lap after); what the meter charged (``take``)."""
    meter.skip()
    for sample in samples:
        meter.lap("source")
        pipeline.feed(sample)
        meter.lap("storage")
    return meter.take()


def write_trace(path: Path, days: int, per_device: bool) -> None:
    """The generated laptop's ``days`` (``vigil demo``'s), with per-device rates if asked."""
    sys.path.insert(0, str(Path(__file__).parent))
    from scenario import with_device_rates

    from agent.demo import write_synthetic_trace

    write_synthetic_trace(path, days, adjust=with_device_rates if per_device else None)


def load_tree(tree: Path, trace: Path, warm_days: int, metered: bool) -> tuple[Any, list[Any], Any]:
    """A pipeline of the ``agent`` package under ``tree``, warmed on the trace's first
    ``warm_days``, the trace's later samples as that tree reads them, and the tree's
    ``PowerMeter`` the pipeline laps on (None: ``metered`` false)."""
    for name in [m for m in sys.modules if m == "agent" or m.startswith("agent.")]:
        del sys.modules[name]  # the objects already made keep their own modules
    sys.path.insert(0, str(tree))
    importlib.invalidate_caches()
    try:
        agent = importlib.import_module("agent")
        if not str(agent.__file__).startswith(str(tree)):
            raise SystemExit(f"{tree}: no agent package there ({agent.__file__} was found)")
        if importlib.import_module("agent.detect.novelty").kernel() is None:
            raise SystemExit(f"{tree}: its kernel is not built (pip install -e there)")
        config = importlib.import_module("agent.config").Config()
        model = importlib.import_module("agent.detect.tflite").load_or_explain()
        pipeline = importlib.import_module("agent.pipeline").Pipeline(config, (), model)
        chunked = importlib.import_module("agent.runtime.replay").chunked
        meter = importlib.import_module("agent.power.meter").PowerMeter() if metered else None
        reading = importlib.import_module("agent.runtime.trace")
        samples = list(reading.read_trace([trace], reading.ReadCounts()))
    finally:
        sys.path.remove(str(tree))
    until = samples[0].t + warm_days * 86_400.0
    warm = [s for s in samples if s.t < until]
    for chunk in chunked(iter(warm)):
        pipeline.feed_chunk(chunk)
    if meter is not None:
        pipeline.meter = meter
    return pipeline, samples[len(warm) :], meter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--samples", type=int, default=40_000)
    parser.add_argument("--block", type=int, default=250)
    parser.add_argument("--first", choices=("this", "other"), default="this")
    parser.add_argument("--warm-days", type=int, default=WARM_DAYS)
    parser.add_argument("--meter", action="store_true", help="lap as the daemon's loop does")
    parser.add_argument(
        "--per-device", action="store_true", help="one interface's and one disk's rates too"
    )
    args = parser.parse_args()
    this = Path(__file__).resolve().parent.parent
    other = args.against.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, str(this))
        trace = Path(tmp) / "laptop.jsonl"
        write_trace(trace, args.warm_days + LIVE_DAYS, args.per_device)
        sys.path.remove(str(this))
        order = [("this", this), ("other", other)]
        if args.first == "other":
            order.reverse()
        trees = {label: load_tree(path, trace, args.warm_days, args.meter) for label, path in order}
    n = min(args.samples, *(len(live) for _, live, _ in trees.values()))
    cpu = dict.fromkeys(trees, 0.0)
    for label, start, end in in_turns(n, args.block, list(trees)):
        pipeline, live, meter = trees[label]
        began = time.process_time()
        if meter is None:
            for sample in live[start:end]:
                pipeline.feed(sample)
        else:
            feed_metered(pipeline, meter, live[start:end])
        cpu[label] += time.process_time() - began
    each = {label: cpu[label] / n * 1e6 for label in trees}
    metered = "metered as the loop does" if args.meter else "unmetered"
    laptop = "with per-device rates" if args.per_device else "totals only"
    _, live, _ = trees["this"]
    system = max((len(s.data) for s in live[:n] if s.sensor == "system"), default=0)
    laptop += f", {system} system streams"
    print(
        f"live samples after {args.warm_days} days ({laptop}): {n:,}, in blocks of "
        f"{args.block}, {metered}"
    )
    print(f"this tree   {this}: {each['this']:.1f} us a sample")
    print(f"other tree  {other}: {each['other']:.1f} us a sample")
    print(f"this / other: {each['this'] / each['other']:.4f} (loaded first: {args.first})")


if __name__ == "__main__":
    main()
