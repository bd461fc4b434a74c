"""Stage 3, the always-on tier: every numeric stream scored -> anomaly scores per stream and
per source, and ``anomaly.start`` / ``anomaly.end`` events.

Per stream, at every sample that carries it, three numbers (four with the shape memory),
each judged by its rank among the stream's own recent ones (``novelty.py``: a tail p-value
as a *surprise*, ``-log10 p``, plus the distance past the range seen):

* **value**: the reading itself (two-sided): a dropout, a runaway, a spike, a new level;
* **shape**: the tiny model's error on the stream's last W values read in units of the
  W - 1 before the newest (one model for all streams; upper tail only): half its forecast
  of the newest value, which it does not see, half its reconstruction of the others: a step
  or a spike that the window did not lead to, or a pattern the model, trained on generic
  shapes and then on this machine's own (``personalise.py``), does not know;
* **spread**: the log standard deviation of those W values (two-sided): a sensor stuck on
  one value, noise that grows;
* **novelty** (``shape_memory``, off by default): how far the stream's last 8 steps (a value
  every 86.4 s at most) are from the nearest window of its own memory of shapes
  (``scoring.memory_novelties``; upper tail), once it has a day behind it: a pattern this
  stream never showed.

A stream's surprise is the largest of them, the shape's and the novelty's counting at most
``MODEL_MARGIN`` above the value's and the spread's, ``YOUNG_MODEL_MARGIN`` in the stream's
first day (any sudden step is a large error to the model, also a step into a usual state: a
charger plugged in, a runaway ending, a browser closed at night, whose window a memory of 64
may have let go since yesterday); its score is
``s / (s + 3)`` in [0, 1), so 0.5 is a one-in-a-thousand number. The ranks are this
stream's online thresholds: what was usual for it lately, kept in memory. The ``tiny``
score is the shape's alone.

Each history keeps ``history_n`` entries spanning about ``history_s`` of sample time: it
fills with every sample, then takes one entry per ``history_s / history_n`` seconds, so
the daemon (a sample every 10 s) remembers days, not hours. Time enters only there:
repeated or backward timestamps never add an entry early, gaps add one.

The streams of one sample are combined into one score per source (``system``, ``battery``,
a metric's name): the best stream's surprise corrected for the number of streams
(Bonferroni), or, if it says more, the rank of the sum of all the streams' surprises among
the source's own past sums (several streams a little odd at once, in a way the source has not
shown; streams that always move together make sums that are usual). That score drives the
episodes (``episodes.py``).

The parts: ``scoring.py`` (the numbers), ``episodes.py`` (the events), ``codec.py`` (state
for the memory), ``stage.py`` (chunks through all three).

Bad input: NaN and infinities never get here (the gate refuses them); values are clipped to
``MAX_VALUE``, so a reading of 1e300 is the largest surprise, never an overflow; a constant
stream's spread is floored and its ranks all tie, so it stays quiet; no verdict before
``WARMUP_N`` entries.
"""

from __future__ import annotations

from agent.detect.anomaly.scoring import (
    MAX_VALUE,
    WindowModel,
    combine,
    to_score,
)
from agent.detect.anomaly.stage import WARMUP_S, AnomalyDetector, AnomalyStep, ChunkResult

__all__ = [
    "MAX_VALUE",
    "AnomalyDetector",
    "WARMUP_S",
    "AnomalyStep",
    "ChunkResult",
    "WindowModel",
    "combine",
    "to_score",
]
