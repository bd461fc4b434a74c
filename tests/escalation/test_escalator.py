"""Escalation end to end, through replay: the wakes' events do not depend on the backend, the
findings keep the model's checked text and its cost, a backend that hangs or crashes gives
``wake.failed`` and the replay goes on, and what reaches a backend is redacted."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agent import config as config_mod
from agent import synthetic
from agent.clock import SystemClock
from agent.config import Config
from agent.demo import demo_fences, write_synthetic_trace
from agent.escalation.backends import make_backend
from agent.escalation.escalator import Escalator, WakeResult
from agent.escalation.policy import WakeRequest
from agent.escalation.prompt import first_sentence
from agent.memory import schema
from agent.memory.db import open_engine
from agent.memory.store import MemoryStore
from agent.memory.wakes import WakeStore
from agent.runtime.explain import explain
from agent.runtime.replay import replay_files
from agent.runtime.trace import ReadCounts, TraceWriter, read_trace
from agent.samples import Event, Sample

#: The demo day with two wake rules: the runaway (ffmpeg, 14:00) and the first arrivals.
RULES = """
[[rules]]
name = "runaway"
stream = "system.cpu_pct"
above = 90.0
for_s = 60.0
action = "wake"

[[rules]]
name = "new_place"
event = "place.arrive"
data = {{ new = true }}
action = "wake"

[escalation]
{escalation}
"""


def config(escalation: str = "") -> Config:
    return config_mod.parse(RULES.format(escalation=escalation))


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trace = tmp_path_factory.mktemp("day") / "day.jsonl.gz"
    write_synthetic_trace(trace)
    return trace


def replay(trace: Path, cfg: Config, db: Path) -> tuple[list[Event], list[dict[str, Any]]]:
    backend, _ = make_backend(cfg.escalation, SystemClock())
    events: list[Event] = []
    replay_files([trace], cfg, db=db, fences=demo_fences(), on_event=events.append, backend=backend)
    engine = open_engine(db)
    findings = WakeStore(engine).findings()
    engine.dispose()
    return events, findings


def wakes(events: list[Event]) -> list[str]:
    return [e.to_json() for e in events if e.kind == "wake.done"]


def python(script: str) -> str:
    """An argv of this Python running ``script``, as the config's command list."""
    return json.dumps([sys.executable, "-c", script])


#: A stand-in model: the culprit, then the first fact (what happened) as the same sentence.
ANSWER = """
import json, sys
job = json.load(sys.stdin)
d, fact = job["diagnosis"], job["facts"][0]
print(f"{d['culprit']} did it: " + fact[0].lower() + fact[1:] + " More words.")
"""


def test_wakes_are_the_same_with_and_without_a_model(day: Path, tmp_path: Path) -> None:
    alone, found_alone = replay(day, config('backend = "none"'), tmp_path / "a.db")
    asked, found = replay(
        day, config(f'backend = "command"\ncommand = {python(ANSWER)}'), tmp_path / "b.db"
    )
    assert wakes(alone) == wakes(asked)
    done = [json.loads(w) for w in wakes(asked)]
    assert [(d["subject"], d["data"]["culprit"]) for d in done] == [
        ("unusual_place", "place-1"),
        ("unusual_place", "place-2"),
        ("cpu_runaway", "ffmpeg"),
    ]
    # The runaway from 14:00: its rule fires after 60 s, the wake 300 s (debounce) later.
    assert done[2]["t"] == synthetic.START_T + synthetic.RUNAWAY[0] + 60.0 + 300.0
    assert [f["status"] for f in found_alone] == ["none"] * 3
    assert all(f["model_text"] is None and f["cpu_s"] is None for f in found_alone)
    for f in found:
        assert f["status"] == "done" and f["backend"] == "command"
        assert f["cpu_s"] > 0 and f["wall_s"] > 0 and f["peak_rss_kb"] > 0
        assert f["text"].startswith(f"{f['culprit']} did it: at ") and f["text_source"] == "model"
        assert f["model_text"] == f["text"] + " More words."


def test_a_second_look_wakes_the_model_only_when_the_diagnosis_changed(
    day: Path, tmp_path: Path
) -> None:
    """Each wake is diagnosed again 300 s later. On the synthetic day nothing changes: no
    event, no model, a counter. When memory climbs after the runaway's wake (a leak the first
    five minutes did not show), the second look names it: a ``wake.done`` marked
    ``second_look``, its finding and the model's answer, the first wake as it was."""
    cfg = config(f'backend = "command"\ncommand = {python(ANSWER)}')
    plain, _ = replay(day, cfg, tmp_path / "plain.db")
    assert not [e for e in plain if e.data.get("second_look")]
    store = MemoryStore(open_engine(tmp_path / "plain.db"))
    assert store.counters().get("wake.second_look_same", 0) == 3  # one per wake of the day
    store.close()

    runaway_t = synthetic.START_T + synthetic.RUNAWAY[0]
    read: list[bool] = []  # each look that read its context: a second look or not
    prepare = Escalator._prepare

    def reading(self: Escalator, request: WakeRequest) -> Any:
        read.append(request.second_look)
        return prepare(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Escalator, "_prepare", reading)
        replay(day, cfg, tmp_path / "again.db")
    # two arrivals at new places and the runaway: only the runaway's cause can change
    assert read == [False, False, False, True]

    leaking = tmp_path / "leak.jsonl.gz"
    with TraceWriter(leaking, created=synthetic.START_T, host="test", source="test") as writer:
        for s in read_trace([day], ReadCounts()):
            if s.sensor == "system" and runaway_t + 420.0 <= s.t <= runaway_t + 2400.0:
                climbed = min(85.0, float(s.data["mem_used_pct"]) + (s.t - runaway_t - 420.0) / 6)
                s = Sample(s.sensor, s.t, {**s.data, "mem_used_pct": climbed})
            writer.write(s)
    events, found = replay(leaking, cfg, tmp_path / "leak.db")
    done = [json.loads(w) for w in wakes(events)]
    first = next(d for d in done if d["subject"] == "cpu_runaway")
    assert first["data"]["culprit"] == "ffmpeg" and "second_look" not in first["data"]
    looks = [d for d in done if d["data"].get("second_look")]
    assert [d["subject"] for d in looks] == ["memory_growth"]
    assert looks[0]["t"] == first["t"] + 300.0
    finding = next(f for f in found if f["wake_id"] == looks[0]["data"]["wake"])
    # The incident began when the CPU first crossed (its rule fired a minute later).
    assert finding["cause"] == "memory_growth" and finding["start_t"] == runaway_t
    assert finding["status"] == "done" and finding["text_source"] == "model"


def test_a_hanging_backend_fails_its_wakes_and_the_replay_goes_on(
    day: Path, tmp_path: Path
) -> None:
    hang = python("import time; time.sleep(60)")
    events, found = replay(
        day, config(f'backend = "command"\ncommand = {hang}\ntimeout_s = 1.0'), tmp_path / "h.db"
    )
    failed = [e for e in events if e.kind == "wake.failed"]
    done = [e for e in events if e.kind == "wake.done"]
    assert [(e.t, e.data["wake"]) for e in failed] == [(e.t, e.data["wake"]) for e in done]
    assert {e.data["reason"] for e in failed} == {"no answer in 1 s"}
    assert [f["status"] for f in found] == ["failed"] * len(done)
    assert all(f["text"] == f["summary"] and f["text_source"] == "template" for f in found)
    assert events[-1].t > done[-1].t  # the replay went on after the last failed wake
    store = MemoryStore(open_engine(tmp_path / "h.db"))
    assert store.sample_count() == sum(1 for _ in read_trace([day], ReadCounts()))
    store.close()


def test_a_crashing_backend_says_how(day: Path, tmp_path: Path) -> None:
    crash = python("import os; os.abort()")
    events, _ = replay(day, config(f'backend = "command"\ncommand = {crash}'), tmp_path / "c.db")
    reasons = {e.data["reason"] for e in events if e.kind == "wake.failed"}
    assert reasons == {"killed by SIGABRT"}


def test_an_answer_that_fails_the_check_keeps_the_template(day: Path, tmp_path: Path) -> None:
    invent = python("import sys; sys.stdin.read(); print('The Linux kernel did it at 99:99.')")
    _, found = replay(day, config(f'backend = "command"\ncommand = {invent}'), tmp_path / "i.db")
    assert [f["status"] for f in found] == ["template"] * 3
    for f in found:
        assert f["text"] == f["summary"] and f["model_text"] == "The Linux kernel did it at 99:99."
        assert f["check"].startswith("names 'Linux'")


#: A wake rule that fires on the day's first sample, before any history: nothing stands out.
FIRST = """
[[rules]]
name = "warm"
stream = "system.temp_C"
above = 0.0
action = "wake"
"""


def explain_suppressed(db: Path, cfg: Config) -> WakeResult:
    """``vigil explain`` on the first ``wake.suppressed`` stored in ``db``."""
    store = MemoryStore(open_engine(db))
    event_id = next(
        r.id
        for r in store.query(select(schema.events).where(schema.events.c.kind == "wake.suppressed"))
    )
    backend, _ = make_backend(cfg.escalation, SystemClock())
    result = explain(store, event_id, cfg.escalation, lambda: backend)
    store.close()
    return result


def test_a_wake_that_names_no_cause_leaves_the_model_asleep(day: Path, tmp_path: Path) -> None:
    """The diagnosis says "no cause stands out": the wake is a ``wake.suppressed`` (no_cause)
    with its summary, no wake row, no model; ``wake_unknown`` wakes the model for it, and
    ``vigil explain`` on the suppressed event runs it by hand."""
    answer = f'backend = "command"\ncommand = {python(ANSWER)}'
    cfg = config_mod.parse(RULES.format(escalation=answer) + FIRST)
    events, found = replay(day, cfg, tmp_path / "q.db")
    held = [e for e in events if e.kind == "wake.suppressed"]
    assert [(e.subject, e.data["reason"]) for e in held] == [("warm", "no_cause")]
    assert "no cause stands out" in held[0].data["summary"]
    assert [json.loads(w)["subject"] for w in wakes(events)] == [
        "unusual_place",
        "unusual_place",
        "cpu_runaway",
    ]
    assert len(found) == 3  # no wake row, no model for the held one

    woken = config_mod.parse(RULES.format(escalation=f"{answer}\nwake_unknown = true") + FIRST)
    events, found = replay(day, woken, tmp_path / "w.db")
    assert not [e for e in events if e.kind == "wake.suppressed"]
    assert [json.loads(w)["subject"] for w in wakes(events)][0] == "unknown"
    assert len(found) == 4 and found[0]["cause"] == "unknown" and found[0]["status"] == "done"

    result = explain_suppressed(tmp_path / "q.db", cfg)
    assert result.diagnosis is not None and result.diagnosis.cause == "unknown"
    assert result.wake_id is not None


#: A second wake rule on the runaway: its CPU still above 90 % twenty minutes in.
STILL = """
[[rules]]
name = "still_busy"
stream = "system.cpu_pct"
above = 90.0
for_s = 1200.0
action = "wake"
"""


def test_a_wake_that_repeats_a_finding_leaves_the_model_asleep(day: Path, tmp_path: Path) -> None:
    """The runaway twenty minutes in fires a second rule, whose wake names what the first
    said (``cpu_runaway``, ``ffmpeg``) 19 minutes before: a ``wake.suppressed`` (repeat, the
    first finding's time), no wake row, no model. ``repeat_s = 0`` wakes the model for it,
    and so does ``vigil explain`` on the suppressed event."""
    answer = f'backend = "command"\ncommand = {python(ANSWER)}'
    cfg = config_mod.parse(RULES.format(escalation=answer) + STILL)
    events, found = replay(day, cfg, tmp_path / "q.db")
    first = next(json.loads(w) for w in wakes(events) if "cpu_runaway" in w)
    held = [e for e in events if e.kind == "wake.suppressed"]
    assert [(e.subject, e.data["reason"], e.data["finding_t"]) for e in held] == [
        ("still_busy", "repeat", first["t"])
    ]
    assert held[0].t - first["t"] < 3600.0 and "ffmpeg" in held[0].data["summary"]
    assert [f["cause"] for f in found] == ["unusual_place", "unusual_place", "cpu_runaway"]
    store = MemoryStore(open_engine(tmp_path / "q.db"))
    assert store.counters().get("wake.repeat") == 1
    store.close()
    result = explain_suppressed(tmp_path / "q.db", cfg)
    assert result.diagnosis is not None and result.diagnosis.culprit == "ffmpeg"
    assert result.wake_id is not None

    always = config_mod.parse(RULES.format(escalation=f"{answer}\nrepeat_s = 0.0") + STILL)
    events, found = replay(day, always, tmp_path / "w.db")
    assert not [e for e in events if e.kind == "wake.suppressed"]
    assert [f["cause"] for f in found] == [
        "unusual_place",
        "unusual_place",
        "cpu_runaway",
        "cpu_runaway",
    ]
    assert found[3]["status"] == "done"


#: A wake on coming home in the evening (17:44), hours after the runaway.
HOME = """
[[rules]]
name = "home"
event = "geofence.enter"
subject = "home"
action = "wake"
"""


def test_the_budget_counts_the_incidents_that_woke_the_model(day: Path, tmp_path: Path) -> None:
    """The day's wakes: home at midnight (the trace begins there), two new places, the
    runaway at 14:06 and its repeat at 14:25 (no model), then home again at 17:49. With a
    budget of five a day the evening's wake runs: the repeat woke nothing and does not count
    (nor do second looks). With four, the four morning incidents spend it: the wakes after
    them are held (``max_per_day``, with the limit) before their look (a week of vitals
    read) is made, since whatever it found the model would sleep; the repeat is then not
    known as one, and their second looks say nothing."""

    def budget(line: str) -> Config:
        escalation = f'backend = "none"\nwake_unknown = true\n{line}'
        return config_mod.parse(RULES.format(escalation=escalation) + STILL + HOME)

    five = budget("max_per_day = 5")
    events, found = replay(day, five, tmp_path / "five.db")
    held = [(e.subject, e.data["reason"]) for e in events if e.kind == "wake.suppressed"]
    assert held == [("still_busy", "repeat")]
    assert len(found) == 5 and found[4]["t"] == synthetic.START_T + 17 * 3600 + 49 * 60

    four = budget("max_per_day = 4")
    events, found = replay(day, four, tmp_path / "four.db")
    held_events = [e for e in events if e.kind == "wake.suppressed"]
    assert [(e.subject, e.data["reason"]) for e in held_events] == [
        ("still_busy", "max_per_day"),
        ("home", "max_per_day"),
    ]
    unlooked = "not looked at: 4 incidents woke the model in the last day"
    assert all(e.data["limit"] == 4 and e.data["summary"] == unlooked for e in held_events)
    assert len(found) == 4
    store = MemoryStore(open_engine(tmp_path / "four.db"))
    assert store.counters().get("wake.max_per_day") == 2
    # The evening's second look is held; the repeat's is the runaway's own incident (the CPU
    # has been above since 14:06), which woke the model, so it is looked at and says nothing.
    assert store.counters().get("wake.second_look_held") == 1
    store.close()


# -- what leaves for a backend -------------------------------------------------------------------
RECORD = """
import json, sys
from pathlib import Path
job = sys.stdin.read()
Path(sys.argv[1]).open("a").write(job + "\\n")
fact = json.loads(job)["facts"][0]
print("process-1 did it: " + fact[0].lower() + fact[1:])
"""


def test_a_command_backend_sees_coarse_places_and_stand_ins(day: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.jsonl"
    argv = json.dumps([sys.executable, "-c", RECORD, str(seen)])
    private = "share_process_names = false\nshare_app_names = false\nlocation_precision_m = 1000.0"
    _, found = replay(
        day, config(f'backend = "command"\ncommand = {argv}\n{private}'), tmp_path / "r.db"
    )
    payloads = [json.loads(line) for line in seen.read_text().splitlines()]
    text = seen.read_text()
    assert len(payloads) == 3
    assert "ffmpeg" not in text and "firefox" not in text and '"title"' not in text
    assert "process-1" in json.dumps(payloads[2]["facts"])
    for payload in payloads[:2]:  # the places: snapped to the 1 km grid, not the fix
        place = payload["context"]["place"]
        assert (place["lat"], place["lon"]) != (None, None)
        for key in ("lat", "lon"):
            assert len(str(place[key]).split(".")[-1]) <= 6
        assert (
            abs(place["lat"] - synthetic.HOME[0]) < 0.01
            or abs(place["lat"] - synthetic.WORK[0]) < 0.01
        )
        exact = [c for c in (synthetic.HOME, synthetic.WORK) if (place["lat"], place["lon"]) == c]
        assert not exact
    # The stand-in in the answer is the real name again, here on this machine.
    assert found[2]["text"].startswith("ffmpeg did it: at ") and found[2]["status"] == "done"


class _Recorder(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that keeps every request it gets."""

    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        fact = first_sentence(body["messages"][-1]["content"])
        type(self).seen.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        reply = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "process-1 did it: " + fact[0].lower() + fact[1:],
                    },
                }
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 4, "total_tokens": 44},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
    thread.join()


def test_an_openai_server_gets_the_redacted_facts_and_the_key(
    day: Path, tmp_path: Path, recorder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openai")
    monkeypatch.setenv("VIGIL_TEST_KEY", "sk-test-123")
    settings = (
        f'backend = "openai"\nurl = "{recorder}"\nremote_model = "m"\n'
        'api_key_env = "VIGIL_TEST_KEY"\nshare_process_names = false'
    )
    _, found = replay(day, config(settings), tmp_path / "o.db")
    assert len(_Recorder.seen) == 3
    for request in _Recorder.seen:
        assert request["path"] == "/v1/chat/completions"
        assert request["auth"] == "Bearer sk-test-123"
        assert request["body"]["model"] == "m" and request["body"]["temperature"] == 0.0
        sent = json.dumps(request["body"]["messages"])
        assert "ffmpeg" not in sent and "firefox" not in sent
        assert str(synthetic.HOME[0])[:7] not in sent  # no coordinates in the facts
    assert "process-1" in json.dumps(_Recorder.seen[2]["body"]["messages"])
    assert found[2]["text"].startswith("ffmpeg did it: at ") and found[2]["status"] == "done"
    assert found[2]["tokens_out"] == 4
    engine = open_engine(tmp_path / "o.db")
    assert "sk-test-123" not in json.dumps(WakeStore(engine).findings())
    assert "sk-test-123" not in json.dumps([e.data for e in MemoryStore(engine).events()])
    engine.dispose()


def test_a_short_runaway_on_a_new_install_is_read_from_its_start(tmp_path: Path) -> None:
    """A new install's tenth minute: a busy half-load at first, then `burner` takes the CPU
    for three minutes, which fires a two-minute rule; its wake, five minutes after the
    firing, comes when the machine is idle again. Read from the firing, the incident was
    mostly the idle minutes after it, and the CPU "reached 0 %" of a usual made of the
    runaway's own first minutes: no cause. Read from when the CPU first crossed, it is a
    runaway, and `burner` its culprit."""
    t0 = synthetic.START_T
    trace = tmp_path / "new.jsonl"

    def cpu(t: float) -> float:
        if t < 180:
            return 5.0 + (t % 30)  # a quiet start
        if t < 420:
            return 50.0  # a build on one of two cores
        if t < 600:
            return 1.0
        return 100.0 if t < 780 else 0.5  # burner, three minutes

    with TraceWriter(trace, created=t0, host="test", source="test") as writer:
        for t in range(0, 1320, 10):
            load = cpu(t)
            writer.write(Sample("system", t0 + t, {"cpu_pct": load, "mem_used_pct": 20.0}))
            if t % 60 == 0:
                top = ("burner", 99.0) if 600 <= t < 780 else ("make", load)
                apps = {"cpu1_name": top[0], "cpu1_pct": top[1], "mem1_name": "make"}
                writer.write(Sample("apps", t0 + t, {**apps, "mem1_pct": 1.0}))
    cfg = config_mod.parse(
        '[[rules]]\nname = "cpu_high"\nstream = "system.cpu_pct"\nabove = 90.0\n'
        'for_s = 120.0\naction = "wake"\n[escalation]\nbackend = "none"\n'
    )
    events, found = replay(trace, cfg, tmp_path / "new.db")
    assert [(f["cause"], f["culprit"]) for f in found] == [("cpu_runaway", "burner")]
    assert found[0]["start_t"] == t0 + 600  # when the CPU first crossed, not the firing
    assert "no_cause" not in [e.data.get("reason") for e in events]
