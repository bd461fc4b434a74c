"""App sessions from apps samples: hand-worked timelines, pulsetime 15 s (the config default)."""

from __future__ import annotations

from agent.features.sessions import AppSession, SessionTracker
from agent.samples import Sample, Scalar

T0 = 1_780_272_000.0


def apps(dt: float, app: str | None = None, title: str | None = None, **extra: Scalar) -> Sample:
    data: dict[str, Scalar] = dict(extra)
    if app is not None:
        data["app"] = app
    if title is not None:
        data["title"] = title
    return Sample("apps", T0 + dt, data)


def s(app: str, start: float, end: float, polls: int, title: str | None = None) -> AppSession:
    return AppSession(app, title, T0 + start, T0 + end, polls)


def test_timeline_extend_switch_gap_and_no_focus() -> None:
    tracker = SessionTracker(pulsetime_s=15.0)
    feed = tracker.feed
    # Firefox polled every 5 s: one session growing.
    assert feed(apps(0, "firefox", cpu1_pct=3.0)) == [s("firefox", 0, 0, 1)]
    assert feed(apps(5, "firefox")) == [s("firefox", 0, 5, 2)]
    assert feed(apps(10, "firefox")) == [s("firefox", 0, 10, 3)]
    # Switch to the terminal: firefox closes where it was last seen (10), not at 15.
    assert feed(apps(15, "kitty")) == [s("firefox", 0, 10, 3), s("kitty", 15, 15, 1)]
    assert feed(apps(20, "kitty")) == [s("kitty", 15, 20, 2)]
    # 20 s without a reading (laptop lid, sensor down): longer than pulsetime -> new session.
    assert feed(apps(40, "kitty")) == [s("kitty", 15, 20, 2), s("kitty", 40, 40, 1)]
    assert feed(apps(50, "kitty")) == [s("kitty", 40, 50, 2)]
    # A gap of exactly pulsetime still merges (aw: timestamp <= end + pulsetime).
    assert feed(apps(65, "kitty")) == [s("kitty", 40, 65, 3)]
    # The desktop focused: the session closes; a second empty sample changes nothing.
    assert feed(apps(70)) == [s("kitty", 40, 65, 3)]
    assert tracker.current is None
    assert feed(apps(75, cpu1_name="make", cpu1_pct=180.0)) == []
    # Back to firefox: a new session, even within pulsetime of the old one.
    assert feed(apps(80, "firefox")) == [s("firefox", 80, 80, 1)]
    assert tracker.flush() == s("firefox", 80, 80, 1)
    assert tracker.flush() is None


def test_title_is_part_of_the_key() -> None:
    tracker = SessionTracker(pulsetime_s=15.0)
    assert tracker.feed(apps(0, "firefox", "Inbox")) == [s("firefox", 0, 0, 1, "Inbox")]
    assert tracker.feed(apps(5, "firefox", "Inbox")) == [s("firefox", 0, 5, 2, "Inbox")]
    assert tracker.feed(apps(10, "firefox", "News")) == [
        s("firefox", 0, 5, 2, "Inbox"),
        s("firefox", 10, 10, 1, "News"),
    ]
    # Titles switched off mid-run: the same app without a title is another session.
    assert tracker.feed(apps(15, "firefox")) == [
        s("firefox", 10, 10, 1, "News"),
        s("firefox", 15, 15, 1),
    ]


def test_other_sensors_and_status_samples_are_ignored() -> None:
    tracker = SessionTracker(pulsetime_s=15.0)
    assert tracker.feed(apps(0, "kitty")) == [s("kitty", 0, 0, 1)]
    assert tracker.feed(Sample("system", T0 + 2, {"cpu_pct": 12.0})) == []
    assert tracker.feed(Sample("status", T0 + 3, {"of": "apps", "state": "down"})) == []
    assert tracker.feed(apps(5, "kitty")) == [s("kitty", 0, 5, 2)]


def test_same_instant_merges_and_odd_values_count_as_no_app() -> None:
    tracker = SessionTracker(pulsetime_s=1.5)
    assert tracker.feed(apps(0, "xterm")) == [s("xterm", 0, 0, 1)]
    assert tracker.feed(apps(0, "xterm")) == [s("xterm", 0, 0, 2)]
    assert tracker.feed(apps(1.5, "xterm")) == [s("xterm", 0, 1.5, 3)]
    assert tracker.feed(apps(3.5, "xterm")) == [s("xterm", 0, 1.5, 3), s("xterm", 3.5, 3.5, 1)]
    # An empty app name, or a non-string one from a hand-made trace, is no focus.
    assert tracker.feed(Sample("apps", T0 + 4, {"app": ""})) == [s("xterm", 3.5, 3.5, 1)]
    assert tracker.feed(Sample("apps", T0 + 5, {"app": 7})) == []


def test_replaying_the_same_samples_gives_the_same_sessions() -> None:
    timeline = [apps(t, a) for t, a in [(0, "a"), (5, "a"), (9, "b"), (30, "b"), (31, None)]]

    def run() -> list[AppSession]:
        tracker = SessionTracker(pulsetime_s=15.0)
        out = [session for sample in timeline for session in tracker.feed(sample)]
        last = tracker.flush()
        return out + ([last] if last else [])

    assert run() == run()
    assert run()[-1] == s("b", 30, 30, 1)
