"""Stage 1, features: apps samples -> app sessions by heartbeat merge (ActivityWatch). Pure."""

from __future__ import annotations

from dataclasses import dataclass

from agent.samples import Sample


@dataclass(frozen=True, slots=True)
class AppSession:
    """A stretch of time one app (and title) had the focus, in sample time.

    ``start_t`` is the first apps sample that saw it, ``end_t`` the last one (so a session
    seen once lasts 0 s, as an ActivityWatch event made of one heartbeat does); ``polls``
    counts those samples. ``(app, start_t)`` identifies a session for an upsert. ``title``
    is None when titles are not collected.
    """

    app: str
    title: str | None
    start_t: float
    end_t: float
    polls: int


class SessionTracker:
    """Merges consecutive ``apps`` samples into sessions, as aw-core's ``heartbeat_merge``
    merges heartbeats: a sample with the same ``(app, title)`` as the open session, at most
    ``pulsetime_s`` after its ``end_t``, extends it. A different app or title, or a longer
    gap, closes it and opens a new one; a sample without ``app`` (no window focused) closes
    it. Other sensors' samples are ignored. Samples must come in time order (the gate
    ensures it per sensor). Time comes only from ``sample.t``.
    """

    def __init__(self, pulsetime_s: float) -> None:
        self.pulsetime_s = pulsetime_s
        self._open: AppSession | None = None

    @property
    def current(self) -> AppSession | None:
        """The open session, if any."""
        return self._open

    def feed(self, sample: Sample) -> list[AppSession]:
        """The sessions this sample changed, for a store to upsert by ``(app, start_t)``:
        the open session (extended or new), preceded by the one it closed, if any; or only
        the closed one when the sample has no app; ``[]`` when nothing changed."""
        if sample.sensor != "apps":
            return []
        app, title = sample.data.get("app"), sample.data.get("title")
        last = self._open
        if not isinstance(app, str) or not app:
            self._open = None
            return [last] if last is not None else []
        key = (app, title if isinstance(title, str) else None)
        if (
            last is not None
            and (last.app, last.title) == key
            and sample.t - last.end_t <= self.pulsetime_s
        ):
            self._open = AppSession(last.app, last.title, last.start_t, sample.t, last.polls + 1)
            return [self._open]
        self._open = AppSession(key[0], key[1], sample.t, sample.t, 1)
        return [last, self._open] if last is not None else [self._open]

    def flush(self) -> AppSession | None:
        """The open session, now closed (at the end of a run or a replay)."""
        last, self._open = self._open, None
        return last
