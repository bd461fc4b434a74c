"""``vigil findings``, ``vigil explain`` and ``vigil demo``'s summary, in-process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.demo import write_synthetic_trace
from agent.memory.db import open_engine
from agent.memory.wakes import WakeStore

CONFIG = """
[[rules]]
name = "runaway"
stream = "system.cpu_pct"
above = 90.0
for_s = 60.0
action = "wake"

[escalation]
backend = "none"
"""


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo day replayed into a database kept for the test (one wake: the runaway)."""
    where = tmp_path_factory.mktemp("cmd")
    trace, db, cfg = where / "day.jsonl.gz", where / "v.db", where / "config.toml"
    write_synthetic_trace(trace)
    cfg.write_text(CONFIG)
    assert main(["replay", "--config", str(cfg), "--db", str(db), str(trace)]) == 0
    return cfg, db


def test_findings_list_what_the_wakes_found(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, db = replayed
    capsys.readouterr()
    assert main(["findings", "--config", str(cfg), "--db", str(db), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["cause"], r["culprit"], r["status"], r["origin"]) for r in rows] == [
        ("cpu_runaway", "ffmpeg", "none", "replay")
    ]
    assert rows[0]["text"] == rows[0]["summary"] and "ffmpeg" in rows[0]["summary"]
    assert rows[0]["evidence"]["facts"][1].startswith("The process ffmpeg used")
    assert main(["findings", "--config", str(cfg), "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "cpu_runaway: ffmpeg (process)" in text and "no larger model asked" in text
    # 24h back from the replay's newest sample holds its wake; after its day, nothing.
    assert main(["findings", "--config", str(cfg), "--db", str(db), "--since", "24h"]) == 0
    assert "cpu_runaway: ffmpeg (process)" in capsys.readouterr().out
    assert main(["findings", "--config", str(cfg), "--db", str(db), "--since", "2026-06-02"]) == 0
    assert capsys.readouterr().err.strip() == "no findings"


def test_explain_wakes_a_model_by_hand_on_a_stored_event(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg, db = replayed
    capsys.readouterr()
    assert main(["events", "--config", str(cfg), "--db", str(db), "--kind", "rule.fired"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    event_id = line.split()[0].lstrip("#")
    script = tmp_path / "model.py"
    script.write_text(
        "import json, sys\njob = json.load(sys.stdin)\n"
        "print(job['diagnosis']['culprit'] + ' ran away: the CPU use reached 100 %.')\n"
    )
    cfg.write_text(CONFIG + f"command = {json.dumps([sys.executable, str(script)])}\n")
    args = ["explain", event_id, "--config", str(cfg), "--db", str(db), "--backend", "command"]
    assert main([*args, "--json"]) == 0
    (found,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (found["cause"], found["culprit"], found["origin"]) == (
        "cpu_runaway",
        "ffmpeg",
        "explain",
    )
    assert (
        found["status"] == "done" and found["text"] == "ffmpeg ran away: the CPU use reached 100 %."
    )
    assert found["cpu_s"] > 0 and found["backend"] == "command"
    assert main(["findings", "--config", str(cfg), "--db", str(db), "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # the replay's and the explain's
    assert main(["events", "--config", str(cfg), "--db", str(db), "--kind", "wake.done"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # explain adds no events
    # ...nor does the next start, which records a daemon's wakes whose events a kill lost.
    assert WakeStore(open_engine(str(db))).lost_events() == []
    assert main(["explain", "999999", "--config", str(cfg), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "no event 999999" in err
    assert len(err.strip().splitlines()) == 1, err  # no model made (nor named) for no event


def test_demo_says_what_the_wakes_found_and_which_model_would_add_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "What the 1 wake of the larger model found:" in out  # the runaway (demo.md)
    assert "cpu_runaway: ffmpeg (process)" in out
    assert "vigil demo --wake also asks the larger model" in out


def test_explain_never_looks_past_the_newest_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule that fired at the last sample (a daemon asked at once): its wake is as of that
    sample, not of the debounce's end, which is in the future (and outside report power's
    period)."""
    db, data = tmp_path / "o.db", Path(__file__).parents[1] / "data"
    cfg = ["--config", str(data / "configs" / "outage.toml"), "--db", str(db)]
    assert main(["replay", *cfg, str(data / "traces" / "outage.jsonl")]) == 0
    capsys.readouterr()
    assert main(["explain", "4", *cfg, "--backend", "none", "--json"]) == 0
    (found,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert found["t"] == 1120.0  # the rule's firing and the newest sample
