"""The one door to a backend: process names the events carry are stand-ins too."""

from __future__ import annotations

import json

from agent.config import EscalationConfig
from agent.escalation.context import Context, ProcessFacts
from agent.escalation.diagnosis import diagnose
from agent.escalation.redact import redact
from tests.escalation.test_diagnosis import found


def test_processes_named_by_triggers_and_recent_events_leave_as_stand_ins() -> None:
    """A ``process.busy`` trigger and a recent ``process.calm`` name processes that may not
    be among the context's busiest (``ffmpeg`` here is, ``rsync`` is not): neither name
    reaches the backend, and the answer gets them back."""
    busy = found("process_busy", "process.busy", "ffmpeg", mean_pct=98.0, record_pct=0.0)
    ctx = Context(
        t=60.0,
        start_t=0.0,
        weekday="Monday",
        hour_utc=14.0,
        streams=(),
        processes=(ProcessFacts("ffmpeg", 100.0, 0.0, 1.0, 0.0),),
        triggers=(busy,),
        recent=({"t": -600.0, "kind": "process.calm", "subject": "rsync"},),
    )
    private = EscalationConfig(share_process_names=False)
    seen = redact(ctx, diagnose(ctx), private)
    text = json.dumps(seen.payload)
    assert "ffmpeg" not in text and "rsync" not in text
    assert seen.restore("process-1 and process-2") == "ffmpeg and rsync"
    shared = json.dumps(redact(ctx, diagnose(ctx), EscalationConfig()).payload)
    assert "ffmpeg" in shared and "rsync" in shared
