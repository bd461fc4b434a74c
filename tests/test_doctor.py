"""vigil doctor on this machine: every check says why; only a sensor the config asks for
outright that cannot work makes it fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _tools import free_port

from agent.cli import main


def _doctor(capsys: pytest.CaptureFixture[str], tmp_path: Path, config: str) -> tuple[int, list]:
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    code = main(["doctor", "--json", "--config", str(cfg), "--db", str(tmp_path / "v.db")])
    return code, json.loads(capsys.readouterr().out)


def test_defaults_pass_and_explain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    port = free_port()  # auto finds no gpsd there: location is off, and that is no failure
    code, checks = _doctor(capsys, tmp_path, f"[sensors.location]\ngpsd_port = {port}\n")
    by_name = {c["name"]: c for c in checks}
    assert code == 0
    # The CPU use is a difference of two readings: the check reads twice to show it.
    assert by_name["system"]["ok"] and "cpu_pct" in by_name["system"]["detail"]
    assert not by_name["location"]["ok"] and not by_name["location"]["required"]
    assert str(port) in by_name["location"]["detail"]
    assert by_name["memory"]["detail"].endswith("not created yet (vigil init)")
    assert (
        not by_name["installed"]["ok"] and "vigil service install" in by_name["installed"]["detail"]
    )
    assert by_name["default rules"]["ok"] and by_name["default rules"]["detail"] == "the defaults"
    sections = {"sensor", "runtime", "escalation", "config", "energy", "database", "service"}
    assert {c["section"] for c in checks} == sections
    assert all(c["detail"] for c in checks)


def test_the_larger_model_that_wakes_would_ask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, checks = _doctor(capsys, tmp_path, '[escalation]\nbackend = "none"\n')
    model = next(c for c in checks if c["name"] == "larger model")
    assert not model["ok"] and not model["required"] and "diagnosis only" in model["detail"]
    remote = '[escalation]\nbackend = "openai"\nurl = "http://10.1.2.3/v1"\n'
    code, checks = _doctor(capsys, tmp_path, remote)
    model = next(c for c in checks if c["name"] == "larger model")
    assert code == 2 and model["required"] and "set allow_remote = true" in model["detail"]


def test_a_rules_list_that_leaves_out_default_rules_is_named_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.config_template import TEMPLATE, rule_text

    old = TEMPLATE.replace("\n" + rule_text("heat_high"), "")
    code, checks = _doctor(capsys, tmp_path, old)
    rules = next(c for c in checks if c["name"] == "default rules")
    assert code == 0 and not rules["ok"] and not rules["required"]
    assert "leave out heat_high (" in rules["detail"]
    assert "vigil init --add-rules" in rules["detail"]


def test_a_rule_on_a_stream_its_sensor_does_not_give_is_named_with_the_likely_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rule = '[[rules]]\nname = "{name}"\nstream = "{stream}"\nabove = 90.0\naction = "record"\n'
    typo = rule.format(name="cpu_hot", stream="system.cpu_percent")
    fine = rule.format(name="busy", stream="system.load1")
    code, checks = _doctor(capsys, tmp_path, typo + fine)
    streams = next(c for c in checks if c["name"] == "rule streams")
    assert code == 0 and not streams["ok"] and not streams["required"]
    assert streams["detail"] == (
        "rule cpu_hot: the system sensor gave no cpu_percent here (did you mean "
        "system.cpu_pct?) (a rule fires only on a stream that comes)"
    )
    code, checks = _doctor(capsys, tmp_path, fine)
    assert code == 0 and "rule streams" not in {c["name"] for c in checks}


def test_a_required_sensor_that_cannot_work_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    code, checks = _doctor(
        capsys, tmp_path, f'[sensors.location]\nsource = "gpsd"\ngpsd_port = {port}\n'
    )
    assert code == 2
    location = next(c for c in checks if c["name"] == "location")
    assert location["required"] and not location["ok"]
    assert "gpsd not answering" in location["detail"]


def test_human_output_is_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--db", str(tmp_path / "v.db")]) in (0, 2)
    out = capsys.readouterr().out
    assert "vigil doctor" in out and "system" in out and "tflite" in out


def test_a_database_others_can_read_is_reported_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    db = folder / "v.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text("")
    assert main(["--config", str(cfg), "--db", str(db), "init"]) == 0
    capsys.readouterr()
    argv = ["doctor", "--json", "--config", str(cfg), "--db", str(db)]
    main(argv)
    private = {c["name"]: c for c in json.loads(capsys.readouterr().out)}["private"]
    assert private["ok"], private
    folder.chmod(0o755)  # as a folder shared with a program's install once was
    db.chmod(0o644)
    main(argv)
    private = {c["name"]: c for c in json.loads(capsys.readouterr().out)}["private"]
    assert not private["ok"] and not private["required"]
    assert f"{folder} is 0755" in private["detail"]
    # Opening the memory (as every command does) makes its file 0600 again; its folder may
    # be the user's home, so vigil reports it and leaves the chmod to the user.
    assert str(db) + " is" not in private["detail"] and db.stat().st_mode & 0o777 == 0o600
    assert f"chmod 700 {folder}" in private["detail"]
