"""`vigil service install`: the systemd unit (checked by systemd-analyze) and the Termux scripts."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from _tools import new_database, require_tool

from agent.errors import ConfigError
from agent.platform import is_termux, termux_prefix
from agent.runtime.service import hint, install, unit_template, unit_with_exec

TEMPLATE = Path(__file__).resolve().parents[1] / "systemd" / "vigil.service"
ARGV = [sys.executable, "-m", "agent", "run"]


def _verify_unit(unit: Path, tmp_path: Path) -> None:
    """Fail on any problem systemd-analyze reports about ``unit``.

    ``verify`` exits 0 even for unknown keys or bad values (it only warns), so every output
    line naming the file counts. It runs as a user unit first; without a user manager it may
    fail for reasons that are not the file's, and then the unit is checked as a system unit.
    """
    analyze = require_tool("systemd-analyze")
    runtime_dir = tmp_path / "xdg-runtime"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), "SYSTEMD_PAGER": "cat"}

    def run(*mode: str) -> tuple[int, list[str]]:
        done = subprocess.run(
            [analyze, *mode, "verify", str(unit)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.returncode, (done.stdout + done.stderr).splitlines()

    code, lines = run("--user")
    about_unit = [line for line in lines if unit.name in line]
    if code != 0 and not about_unit:
        code, lines = run()
        about_unit = [line for line in lines if unit.name in line]
    assert about_unit == [], "\n".join(lines)
    assert code == 0, "\n".join(lines)


def test_linux_unit_is_the_template_with_our_exec_start(tmp_path: Path) -> None:
    paths = install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={})

    unit = tmp_path / "vigil.service"
    assert paths == [unit]
    assert unit.stat().st_mode & 0o777 == 0o600  # the user's alone, as all vigil writes
    written = unit.read_text().splitlines()
    shipped = TEMPLATE.read_text().splitlines()
    assert f"ExecStart={sys.executable} -m agent run" in written
    assert [line for line in written if not line.startswith("ExecStart=")] == [
        line for line in shipped if not line.startswith("ExecStart=")
    ]


def test_installed_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    [unit] = install(exec_argv=ARGV, target_dir=tmp_path / "user", termux=False, environ={})
    _verify_unit(unit, tmp_path)


def test_shipped_template(tmp_path: Path) -> None:
    text = TEMPLATE.read_text()
    assert unit_template() == text
    for directive in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecStart=%h/.local/bin/vigil run",
        "Restart=on-failure",
        "RestartSec=10",
        "RestartPreventExitStatus=2",  # a config error exits 2: no restart loop
        "WatchdogSec=60",
        "TimeoutStopSec=30",
        "KillSignal=SIGTERM",
        "WantedBy=default.target",
    ]:
        assert directive in text.splitlines()
    # %h/.local/bin/vigil does not exist here, and verify checks the command is executable.
    copy = tmp_path / "vigil.service"
    copy.write_text(unit_with_exec(text, [sys.executable]))
    _verify_unit(copy, tmp_path)


def test_exec_start_quoting_follows_systemd_rules(tmp_path: Path) -> None:
    argv = [sys.executable, "--config", "/home/a b/vigil.toml", "100%", "$HOME", 'say "hi"', ""]
    unit = unit_with_exec(TEMPLATE.read_text(), argv)
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert line == (
        f'ExecStart={sys.executable} --config "/home/a b/vigil.toml" 100%% $$HOME "say \\"hi\\"" ""'
    )
    path = tmp_path / "vigil.service"
    path.write_text(unit)
    _verify_unit(path, tmp_path)


def test_default_target_is_xdg_config_home(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "cfg"), "HOME": str(tmp_path / "home")}
    assert install(exec_argv=ARGV, termux=False, environ=environ) == [
        tmp_path / "cfg" / "systemd" / "user" / "vigil.service"
    ]
    environ = {"HOME": str(tmp_path / "home")}
    assert install(exec_argv=ARGV, termux=False, environ=environ) == [
        tmp_path / "home" / ".config" / "systemd" / "user" / "vigil.service"
    ]


def test_refuses_to_replace_a_different_file_without_force(tmp_path: Path) -> None:
    [unit] = install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={})
    # The same content again is fine: installing twice changes nothing.
    assert install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={}) == [unit]

    unit.write_text("[Service]\nExecStart=/bin/true\n")
    with pytest.raises(ConfigError, match="exists; use --force to replace") as caught:
        install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={})
    assert caught.value.path == str(unit)
    assert unit.read_text() == "[Service]\nExecStart=/bin/true\n"

    install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={}, force=True)
    assert f"ExecStart={sys.executable} -m agent run" in unit.read_text().splitlines()


@pytest.mark.parametrize("argv", [[], ["vigil", "run"], ["/usr/bin/vigil", "a\nb"]])
def test_rejects_unusable_argv(tmp_path: Path, argv: list[str]) -> None:
    with pytest.raises(ValueError):
        install(exec_argv=argv, target_dir=tmp_path, termux=False, environ={})
    assert list(tmp_path.iterdir()) == []


def test_termux_scripts(tmp_path: Path) -> None:
    prefix = tmp_path / "usr"
    paths = install(exec_argv=ARGV, termux=True, environ={"PREFIX": str(prefix)})

    service = prefix / "var" / "service" / "vigil"
    run, log_run = service / "run", service / "log" / "run"
    assert sorted(paths) == sorted([run, log_run])
    for script in paths:
        assert script.stat().st_mode & 0o777 == 0o700
        assert script.read_text().splitlines()[0] == f"#!{prefix}/bin/sh"
    assert f"exec {shlex.join(ARGV)} 2>&1" in run.read_text().splitlines()
    assert "termux-wake-lock" in run.read_text()
    log_text = log_run.read_text()
    assert f"dir={shlex.quote(str(prefix / 'var' / 'log' / 'sv' / 'vigil'))}" in log_text
    assert 'mkdir -p "$dir"' in log_text.splitlines()
    assert 'exec svlogd -tt "$dir"' in log_text.splitlines()

    sh = require_tool("sh")
    for script in paths:
        done = subprocess.run([sh, "-n", str(script)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def test_termux_run_script_runs_the_command(tmp_path: Path) -> None:
    # Without termux-wake-lock on PATH the script goes straight to exec, stderr joined to stdout.
    sh = require_tool("sh")
    argv = [
        sys.executable,
        "-c",
        "import sys; print(sys.argv[1:], flush=True); sys.stderr.write('e\\n')",
    ]
    argv += ["a b", "$HOME", "it's"]
    [_, run] = install(exec_argv=argv, termux=True, environ={"PREFIX": str(tmp_path / "usr")})
    done = subprocess.run(
        [sh, str(run)],
        env={"PATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert done.stdout == "['a b', '$HOME', \"it's\"]\ne\n"


def test_termux_is_detected_from_the_environment(tmp_path: Path) -> None:
    environ = {"TERMUX_VERSION": "0.118.1", "PREFIX": str(tmp_path / "usr")}
    paths = install(exec_argv=ARGV, environ=environ)
    assert tmp_path / "usr" / "var" / "service" / "vigil" / "run" in paths


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("android", {}, True),
        ("linux", {"TERMUX_VERSION": "0.118.1"}, True),
        ("linux", {}, False),
        ("linux", {"TERMUX_VERSION": ""}, False),
    ],
)
def test_is_termux(platform: str, environ: dict[str, str], expected: bool) -> None:
    assert is_termux(environ=environ, platform=platform) is expected


def test_termux_prefix() -> None:
    assert termux_prefix(environ={"PREFIX": "/x/usr"}) == Path("/x/usr")
    assert termux_prefix(environ={}) == Path("/data/data/com.termux/files/usr")


def test_hints(tmp_path: Path) -> None:
    [unit] = install(exec_argv=ARGV, target_dir=tmp_path, termux=False, environ={})
    linux = hint([unit], termux=False)
    assert str(unit) in linux
    assert "systemctl --user daemon-reload && systemctl --user enable --now vigil" in linux
    assert "loginctl enable-linger $USER" in linux

    prefix = tmp_path / "usr"
    paths = install(exec_argv=ARGV, termux=True, environ={"PREFIX": str(prefix)})
    termux = hint(paths, termux=True)
    assert "sv-enable vigil" in termux
    assert "~/.termux/boot/" in termux
    assert f"#!{prefix}/bin/sh" in termux
    assert f"{prefix}/var/log/sv/vigil/current" in termux


def test_cli_service_install_writes_a_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    assert main(["service", "install"]) == 0
    unit = tmp_path / "cfg" / "systemd" / "user" / "vigil.service"
    out = capsys.readouterr().out
    assert out.count(str(unit)) == 1, out  # said once
    exec_line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    assert exec_line.endswith(" run")
    assert Path(exec_line.removeprefix("ExecStart=").split()[0]).is_absolute()


@pytest.mark.parametrize("how", ["flags", "variables"])
def test_the_service_runs_on_the_config_and_database_it_was_installed_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """`vigil service install --db other.db` (or with VIGIL_DB set): a unit that ran on the
    default database instead would write where the user does not look."""
    from agent.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    monkeypatch.chdir(tmp_path)
    config, db = tmp_path / "my.toml", new_database(tmp_path / "other.db")
    config.write_text("")
    if how == "flags":
        assert main(["service", "install", "--config", "my.toml", "--db", "other.db"]) == 0
    else:
        monkeypatch.setenv("VIGIL_CONFIG", "my.toml")
        monkeypatch.setenv("VIGIL_DB", "other.db")
        assert main(["service", "install"]) == 0
    unit = tmp_path / "cfg" / "systemd" / "user" / "vigil.service"
    exec_line = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
    assert exec_line.endswith(f" run --config {config} --db {db}")


def test_a_service_on_a_database_that_does_not_exist_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon refuses a named database that does not exist (a typo): a unit on one would
    only fail and restart."""
    from agent.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    assert main(["service", "install", "--db", str(tmp_path / "typo.db")]) == 2
    assert "no such database" in capsys.readouterr().err
    assert not (tmp_path / "cfg" / "systemd" / "user" / "vigil.service").exists()
