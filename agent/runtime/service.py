"""`vigil service install`: writes a systemd user unit (Linux) or a termux-services script."""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import agent
from agent.errors import ConfigError
from agent.files import write_text_replacing
from agent.platform import is_termux, termux_prefix

logger = logging.getLogger(__name__)

SERVICE_NAME = "vigil"
_UNIT_FILE = f"{SERVICE_NAME}.service"


def install(
    *,
    exec_argv: Sequence[str],
    target_dir: Path | None = None,
    termux: bool | None = None,
    environ: Mapping[str, str] = os.environ,
    force: bool = False,
) -> list[Path]:
    """Write the service files for this platform and return their paths.

    ``exec_argv`` is the command the service manager runs, e.g. ``[sys.executable, "-m",
    "agent", "run"]``; its first item must be an absolute path. ``target_dir`` is the
    directory the service manager reads: ``$XDG_CONFIG_HOME/systemd/user`` on Linux,
    termux-services' ``$SVDIR`` (``$PREFIX/var/service``) on Termux. ``termux`` defaults to
    detecting the platform. A file that exists with other content is a ``ConfigError``
    unless ``force`` is given; nothing is written in that case.
    """
    argv = _checked_argv(exec_argv)
    if termux is None:
        termux = is_termux(environ=environ)
    files = (
        _termux_files(argv, target_dir, environ)
        if termux
        else _systemd_files(argv, target_dir, environ)
    )
    for path, (content, _mode) in files.items():
        if not force and _differs(path, content):
            raise ConfigError(str(path), "", "exists; use --force to replace")
    for path, (content, mode) in files.items():
        write_text_replacing(path, content, mode)  # never a half-written service file
        logger.debug("wrote %s", path)
    return list(files)


def hint(paths: Sequence[Path], termux: bool) -> str:
    """What the user runs next, for printing after ``install``."""
    lines = [f"Wrote {path}" for path in paths]
    if termux:
        prefix = _prefix_of(paths)
        lines += [
            "",
            "Next (needs `pkg install termux-services`, then a new Termux session so its",
            "service daemon runs):",
            f"  sv-enable {SERVICE_NAME}",
            f"Logs: {prefix}/var/log/sv/{SERVICE_NAME}/current",
            "",
            "To start at boot, install the Termux:Boot app and add an executable script in",
            "~/.termux/boot/, e.g. ~/.termux/boot/start-services:",
            f"  #!{prefix}/bin/sh",
            "  termux-wake-lock",
            "  . $PREFIX/etc/profile   # starts termux-services, which starts enabled services",
        ]
    else:
        lines += [
            "",
            "Next:",
            f"  systemctl --user daemon-reload && systemctl --user enable --now {SERVICE_NAME}",
            "To keep it running without a login session (and start it at boot):",
            "  loginctl enable-linger $USER",
            f"Logs: journalctl --user -u {SERVICE_NAME} -f",
        ]
    return "\n".join(lines)


def unit_template() -> str:
    """The shipped systemd unit: packaged in the wheel, or ``systemd/`` in a source checkout."""
    packaged = resources.files(agent).joinpath("_systemd", _UNIT_FILE)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = Path(agent.__file__).resolve().parent.parent / "systemd" / _UNIT_FILE
    return source.read_text(encoding="utf-8")


def unit_with_exec(template: str, argv: Sequence[str]) -> str:
    """``template`` with its one ExecStart line running ``argv``."""
    lines = template.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("ExecStart=")]
    if len(starts) != 1:
        raise ValueError(f"unit template needs exactly one ExecStart= line, has {len(starts)}")
    lines[starts[0]] = "ExecStart=" + " ".join(_systemd_quote(arg) for arg in argv) + "\n"
    return "".join(lines)


def _systemd_files(
    argv: Sequence[str], target_dir: Path | None, environ: Mapping[str, str]
) -> dict[Path, tuple[str, int]]:
    directory = target_dir if target_dir is not None else _config_home(environ) / "systemd" / "user"
    return {directory / _UNIT_FILE: (unit_with_exec(unit_template(), argv), 0o600)}


def _termux_files(
    argv: Sequence[str], target_dir: Path | None, environ: Mapping[str, str]
) -> dict[Path, tuple[str, int]]:
    # termux-services is runit: runsvdir watches $SVDIR and runs <service>/run, piping its
    # stdout into <service>/log/run. Its own start script sets SVDIR and LOGDIR this way.
    prefix = termux_prefix(environ=environ)
    sv_dir = (
        target_dir
        if target_dir is not None
        else Path(environ.get("SVDIR") or prefix / "var" / "service")
    )
    log_dir = Path(environ.get("LOGDIR") or prefix / "var" / "log") / "sv" / SERVICE_NAME
    shebang = f"#!{prefix}/bin/sh\n"
    command = " ".join(shlex.quote(arg) for arg in argv)
    run = (
        shebang
        + "# vigil under termux-services (runit); written by `vigil service install`.\n"
        + "# Without a wake lock Android stops the CPU between samples once the screen is off.\n"
        + "if command -v termux-wake-lock >/dev/null 2>&1; then\n"
        + "    termux-wake-lock\n"
        + "fi\n"
        + f"exec {command} 2>&1\n"
    )
    log_run = (
        shebang
        + "# svlogd timestamps each line and rotates the log (<dir>/current).\n"
        + f"dir={shlex.quote(str(log_dir))}\n"
        + 'mkdir -p "$dir"\n'
        + 'exec svlogd -tt "$dir"\n'
    )
    # log/run first: runsvdir may pick up the folder as soon as run exists (within 5 s).
    service = sv_dir / SERVICE_NAME
    return {service / "log" / "run": (log_run, 0o700), service / "run": (run, 0o700)}


def _checked_argv(exec_argv: Sequence[str]) -> list[str]:
    argv = list(exec_argv)
    if not argv or not os.path.isabs(argv[0]):
        raise ValueError(f"exec_argv must start with an absolute path, got {argv!r}")
    if any(c in arg for arg in argv for c in "\n\r\0"):
        raise ValueError(f"exec_argv cannot contain line breaks or NUL: {argv!r}")
    return argv


def _systemd_quote(arg: str) -> str:
    # systemd.service(5), "Command lines": "%" starts a specifier and "$" a variable anywhere
    # on the line, so both are doubled; quoting follows systemd.syntax(7): a whole word in
    # double quotes, with C-style escapes inside.
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if escaped and not any(c in escaped for c in " \t\"'\\;"):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config_home(environ: Mapping[str, str]) -> Path:
    # The XDG rule platformdirs applies on Linux, but read from ``environ`` so tests can steer it.
    value = environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(value):
        return Path(value)
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".config"


def _prefix_of(paths: Sequence[Path]) -> Path:
    # <prefix>/var/service/vigil/run -> <prefix>; the standard prefix if laid out otherwise.
    for path in paths:
        parts = path.parts
        if parts[-4:] == ("var", "service", SERVICE_NAME, "run"):
            return Path(*parts[:-4])
    return termux_prefix(environ={})


def _differs(path: Path, content: str) -> bool:
    try:
        return path.read_text(encoding="utf-8") != content
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True


def service_paths(*, termux: bool, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Where ``install`` writes on this platform (for ``vigil doctor``)."""
    placeholder = ["/usr/bin/vigil", "run"]
    files = (
        _termux_files(placeholder, None, environ)
        if termux
        else _systemd_files(placeholder, None, environ)
    )
    return list(files)
