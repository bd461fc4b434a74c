"""SampleClock: the time live samples are stamped with, safe from steps of the system clock.

The system clock steps: NTP corrects a Raspberry Pi without a real-time clock by days, a phone
comes back from a reboot with an old time, a user sets the time by hand. Sample times must
still never go backward (the pipeline's durations and the gate rely on it), and a step must be
seen, said once and recorded, not silently move retention or scheduling.

A step is the difference between how far the system clock moved and how far a clock that
never steps moved (``Clock.monotonic``, which counts suspend). A forward step is taken at
once: it is a gap in the samples, like a suspend, and retention counts it (``clock.jump``
events, ``memory/store.py``). A backward step is absorbed: sample time keeps running, slowed
to ``1 - SLEW`` of real time, until the system clock catches up (an hour's step takes ten
hours), so nothing is stamped earlier than what was stored before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from agent.clock import Clock

logger = logging.getLogger(__name__)

#: A step this large (either way) is logged and recorded as a ``clock`` sample; smaller ones
#: (NTP's slewing, a thread scheduled late between the two clock reads) are absorbed silently.
STEP_S = 5.0
#: While sample time is ahead of the system clock it runs this much slower than real time.
SLEW = 0.1


class SampleClock:
    """Wraps the machine's clock for the live source; thread-safe (pollers share it).

    ``not_before`` is the newest stored sample time: a daemon started after a backward step
    (or on a phone whose clock came back wrong) continues from it instead of stamping the
    past. ``on_step(t, step_s)`` is called, under the lock, for every step of at least
    ``STEP_S``, before the sample that saw it is stamped.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        not_before: float | None = None,
        on_step: Callable[[float, float], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_step = on_step
        self._lock = threading.Lock()
        self._t: float | None = None
        self._wall = 0.0
        self._mono = 0.0
        self._not_before = not_before

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> float:
        """The time to stamp a reading taken now with: never earlier than the last one."""
        with self._lock:
            wall, mono = self._clock.now(), self._clock.monotonic()
            if self._t is None:
                return self._start(wall, mono)
            elapsed = max(0.0, mono - self._mono)
            step = wall - self._wall - elapsed
            ahead = self._t + elapsed
            t = wall if wall >= ahead else max(wall, self._t + elapsed * (1 - SLEW))
            if abs(step) >= STEP_S:
                self._stepped(t, step)
            self._t, self._wall, self._mono = t, wall, mono
            return t

    def _start(self, wall: float, mono: float) -> float:
        t = wall
        if self._not_before is not None and wall < self._not_before:
            logger.warning(
                "system clock is %.0f s behind the newest stored sample: sample times continue "
                "from it and catch up at %.0f %% of real time",
                self._not_before - wall,
                SLEW * 100,
            )
            self._report(self._not_before, wall - self._not_before)
            t = self._not_before
        self._t, self._wall, self._mono = t, wall, mono
        return t

    def _stepped(self, t: float, step: float) -> None:
        if step > 0:
            logger.warning("system clock stepped %.0f s forward: samples continue from it", step)
        else:
            logger.warning(
                "system clock stepped %.0f s back: sample times keep running, %.0f %% slower, "
                "until it catches up",
                -step,
                SLEW * 100,
            )
        self._report(t, step)

    def _report(self, t: float, step: float) -> None:
        if self._on_step is not None:
            self._on_step(round(t, 6), round(step, 6))
