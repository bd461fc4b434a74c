"""``vigil report power`` on a real replay: the components add up, the wakes are charged from
their child processes, the counterfactual follows from the measured wakes."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.demo import write_synthetic_trace
from agent.power.coefficients import PUBLISHED_VCPU

#: A stand-in for the larger model: a real child process that burns 0.3 CPU s and answers.
MODEL = """\
import json, sys, time
job = json.load(sys.stdin)
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print(json.dumps({"text": "Something changed.", "tokens_in": 100, "tokens_out": 5}))
"""

#: The demo day's wakes: its runaway and (unlike the defaults, which wait a day) its first
#: arrivals at home and work, so that several wakes are charged.
CONFIG = """
[[rules]]
name = "new_place"
event = "place.arrive"
data = { new = true }
action = "wake"

[[rules]]
name = "cpu_high"
stream = "system.cpu_pct"
above = 90.0
for_s = 120.0
action = "wake"

[escalation]
backend = "command"
debounce_s = 60
"""


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo day replayed with its wakes asking the stand-in model."""
    where = tmp_path_factory.mktemp("report")
    trace, db, cfg, script = (
        where / "day.jsonl.gz",
        where / "v.db",
        where / "config.toml",
        where / "model.py",
    )
    write_synthetic_trace(trace)
    script.write_text(MODEL)
    cfg.write_text(CONFIG + f"command = {json.dumps([sys.executable, str(script)])}\n")
    assert main(["replay", "--config", str(cfg), "--db", str(db), "--wake", str(trace)]) == 0
    return cfg, db


def report(cfg: Path, db: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(["report", "power", "--config", str(cfg), "--db", str(db), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_the_components_add_up_to_the_agent(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    r = report(*replayed, capsys)
    assert r["schema"] == "vigil.power-report/1"
    names = [c["name"] for c in r["components"]]
    assert names[-1] == "unattributed"
    for stage in ("startup", "trace", "anomaly", "tiny_model", "storage", "metering"):
        assert stage in names
    total = sum(c["cpu_s"] for c in r["components"])
    assert total == pytest.approx(r["agent"]["cpu_s"], rel=1e-9)
    assert sum(c["share"] for c in r["components"]) == pytest.approx(1.0)
    # No energy counter in a replay's ledger and no calibration: the published band, said so.
    assert r["energy"]["provenance"] == "estimated"
    assert r["energy"]["banner"].startswith("ESTIMATE")
    k = PUBLISHED_VCPU
    assert r["agent"]["energy_j"] == pytest.approx(r["agent"]["cpu_s"] * k.value)
    assert r["agent"]["energy_band_j"] == pytest.approx(
        [r["agent"]["cpu_s"] * k.low, r["agent"]["cpu_s"] * k.high]
    )
    assert r["coverage"]["origins"] == ["replay"]
    assert r["coverage"]["ledger_hours"] == pytest.approx(24.0, abs=0.1)
    # The synthetic day's battery discharges: the drain is measured and the share follows.
    drain = r["device_drain"]
    assert drain is not None and drain["energy_j"] > 0
    assert r["agent"]["share_of_device"] == pytest.approx(
        r["agent"]["avg_power_w"] / drain["avg_power_w"]
    )


def test_wakes_are_charged_from_their_child_processes(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, db = replayed
    r = report(cfg, db, capsys)
    wakes = r["wakes"]["items"]
    assert len(wakes) >= 2
    assert all(w["status"] in ("done", "template") and w["cpu_s"] >= 0.3 for w in wakes)
    large = next(c for c in r["components"] if c["name"] == "large_model")
    assert large["cpu_s"] == pytest.approx(sum(w["cpu_s"] for w in wakes))
    assert large["calls"] == len(wakes)
    assert large["provenance"] == "estimated (child's rusage)"
    assert all(w["tokens_in"] == 100 and w["tokens_out"] == 5 for w in wakes)


def test_the_tiering_counterfactual_follows_from_the_measured_wakes(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    r = report(*replayed, capsys)
    tiering = r["tiering"]
    samples = next(c for c in r["components"] if c["name"] == "storage")["calls"]
    cpus = sorted(w["cpu_s"] for w in r["wakes"]["items"])
    assert tiering["ticks"] == samples > 20_000
    assert tiering["per_wake_cpu_s"] == pytest.approx(cpus[len(cpus) // 2], rel=0.5)
    large = next(c for c in r["components"] if c["name"] == "large_model")["cpu_s"]
    always = r["agent"]["cpu_s"] - large + tiering["ticks"] * tiering["per_wake_cpu_s"]
    assert tiering["always_on_cpu_s"] == pytest.approx(always)
    k = PUBLISHED_VCPU.value
    assert tiering["saved_energy_j"] == pytest.approx(always * k - r["agent"]["energy_j"])
    # (The agent's start-up here is the whole test process's CPU so far: the share is lower
    # than a real replay's, whose start-up is its imports.)
    assert tiering["saved_share"] == pytest.approx(tiering["saved_energy_j"] / (always * k))
    assert 0.5 < tiering["saved_share"] < 1.0
    assert tiering["always_on_capped"] is False  # 20k x 0.3 s fits in a day on 2 cores
    assert any("samples the always-on tier" in a for a in tiering["assumptions"])


def test_the_period_counts_back_from_the_newest_record(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, db = replayed
    whole = report(cfg, db, capsys, "--since", "all")
    last = report(cfg, db, capsys, "--since", "6h")
    assert last["period"]["end"] == whole["period"]["end"]
    assert last["period"]["hours"] == pytest.approx(6.0)
    assert last["coverage"]["ledger_hours"] < whole["coverage"]["ledger_hours"]
    assert last["agent"]["cpu_s"] < whole["agent"]["cpu_s"]


def test_terminal_and_csv_views(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg, db = replayed
    out = tmp_path / "power.csv"
    capsys.readouterr()
    assert main(["report", "power", "--config", str(cfg), "--db", str(db), "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "vigil itself" in text and "unattributed" in text and "tiering saved" in text
    assert "ESTIMATE" in text
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {"hour", "component", "cpu_s", "energy_j", "provenance"} <= set(rows[0])
    r = report(cfg, db, capsys)
    assert sum(float(row["cpu_s"]) for row in rows) == pytest.approx(r["agent"]["cpu_s"], rel=1e-4)


def test_the_terminal_view_written_to_a_file_cuts_no_cell(
    replayed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a terminal (`vigil report power > power.txt`): rich's 80 columns would cut the
    wakes' times and causes to "2026-…" and "cpu_r…"."""
    monkeypatch.delenv("COLUMNS", raising=False)
    cfg, db = replayed
    capsys.readouterr()
    assert main(["report", "power", "--config", str(cfg), "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "…" not in text
    wakes = report(cfg, db, capsys)["wakes"]["items"]
    assert all(w["cause"] in text for w in wakes if w["cause"])


def test_a_missing_database_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "power", "--db", str(tmp_path / "none.db")]) == 2
    assert "no such database" in capsys.readouterr().err
