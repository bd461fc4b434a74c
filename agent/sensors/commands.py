"""Running a sensor's outside command (``termux-location``, ``swaymsg``...) with a hard
timeout, leaving no process of it behind.

A command can hang (Termux:API waiting for an app or a permission prompt), and it can leave
processes behind: a shell script's background jobs, or a program that double-forks or calls
setsid(2) to leave its process group, which a kill of the group misses. So each run

- starts the command leading a process group and session of its own, with a mark in its
  environment (``VIGIL_RUN``) that every process it starts inherits;
- makes vigil a child subreaper first (Linux and Android, ``PR_SET_CHILD_SUBREAPER``): a
  process orphaned below it is re-parented to vigil instead of init, so it stays among
  vigil's descendants, where it can be found;
- on a timeout, and after a normal exit that left processes behind, kills every process of
  the run (in its process group or session, carrying its mark, or below the command) until
  none is left, and reaps those that became vigil's children.

Where there is no subreaper (macOS), what the command's tree held when it was collected,
before the first kill, and its process group are killed; a process that left both and was
orphaned before that escapes.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence

import psutil

from agent.clock import sleep

logger = logging.getLogger(__name__)

#: A command is killed after at most this long, whatever its configured timeout: stopping
#: waits for a running poll, and the service manager kills vigil after 30 s of stopping
#: (``TimeoutStopSec`` of the systemd unit).
MAX_TIMEOUT_S = 20.0
#: The environment variable that marks every process of one run.
MARK = "VIGIL_RUN"
#: Killed processes get this many looks, this far apart (5 s in all), to die and be reaped;
#: a run gets this many rounds of search and kill (a process forking as it is killed needs
#: a second round).
REAP_LOOKS = 500
REAP_PAUSE_S = 0.01
KILL_ROUNDS = 5

PR_SET_CHILD_SUBREAPER = 36

_runs = itertools.count(1)
_subreaper_lock = threading.Lock()
_subreaper: bool | None = None


def cap_timeout(command: str, timeout_s: float) -> float:
    """``timeout_s``, or ``MAX_TIMEOUT_S`` (with a warning) when it is longer."""
    if timeout_s > MAX_TIMEOUT_S:
        logger.warning(
            "%s: a timeout of %g s is longer than a stop may take; using %g s",
            command,
            timeout_s,
            MAX_TIMEOUT_S,
        )
        return MAX_TIMEOUT_S
    return timeout_s


def become_subreaper() -> bool:
    """Make this process a child subreaper (once); False where the OS has no such thing."""
    global _subreaper
    with _subreaper_lock:
        if _subreaper is None:
            _subreaper = _set_subreaper()
            logger.debug("child subreaper: %s", _subreaper)
        return _subreaper


def _set_subreaper() -> bool:
    if not sys.platform.startswith(("linux", "android")):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        on, unused = ctypes.c_ulong(1), ctypes.c_ulong(0)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, on, unused, unused, unused) == 0)
    except (OSError, AttributeError):
        return False


def run_command(
    argv: Sequence[str], timeout_s: float, *, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (with ``env``, else this process's environment) and collect its output,
    decoded as UTF-8 (undecodable bytes replaced).

    Raises ``subprocess.TimeoutExpired`` after ``timeout_s``, or ``OSError`` when the command
    cannot start. Either way, and after a normal exit, no process of the run is left.
    """
    become_subreaper()
    mark = f"{os.getpid()}.{next(_runs)}"
    environ = {**(os.environ if env is None else env), MARK: mark}
    with subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
        env=environ,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout_s)
        except BaseException:
            _kill_run(proc, mark, argv[0])
            raise
    if _may_have_left(proc.pid):
        _sweep(proc.pid, mark, argv[0])
    return subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)


def _kill_run(proc: subprocess.Popen[str], mark: str, command: str) -> None:
    """Kill a run that is still going: the command's tree as it is now (collected before any
    kill, while every parent link is there) and its process group, then whatever is left."""
    leader = proc.pid
    victims = _run_processes(leader, mark, tree=True)
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _kill(victims)
    proc.wait()  # the leader is Popen's to reap
    _reap([p for p in victims if p.pid != leader])
    _sweep(leader, mark, command)


def _sweep(leader: int, mark: str, command: str) -> None:
    """Kill and reap the processes of the run until a search finds none."""
    for _ in range(KILL_ROUNDS):
        victims = _run_processes(leader, mark, tree=False)
        if not victims:
            return
        logger.debug("%s left %d processes behind: killing them", command, len(victims))
        _kill(victims)
        _reap(victims)
    logger.warning("%s: processes of it outlived %d rounds of SIGKILL", command, KILL_ROUNDS)


def _may_have_left(leader: int) -> bool:
    """Whether a finished run may have left a process: one is still in its process group,
    or this process has children (an orphan re-parented here is one). Two system calls."""
    try:
        os.killpg(leader, 0)
    except ProcessLookupError:
        pass
    except PermissionError:
        return True
    else:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:
        return True
    try:
        waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _run_processes(leader: int, mark: str, *, tree: bool) -> list[psutil.Process]:
    """The processes of the run: with ``tree``, the leader and everything below it; and
    those of this process's descendants in the run's process group or session or carrying
    its mark, plus zombies orphaned here (to reap)."""
    found: dict[int, psutil.Process] = {}
    try:
        if tree:
            top = psutil.Process(leader)
            found = {p.pid: p for p in (top, *top.children(recursive=True))}
    except psutil.Error:
        pass  # the leader is gone already
    try:
        family = psutil.Process().children(recursive=True)
    except psutil.Error:
        family = []
    for proc in family:
        if proc.pid not in found and proc.pid != leader and _belongs(proc, leader, mark):
            found[proc.pid] = proc
    return list(found.values())


def _belongs(proc: psutil.Process, leader: int, mark: str) -> bool:
    try:
        if leader in (os.getsid(proc.pid), os.getpgid(proc.pid)):
            return True
        if proc.status() == psutil.STATUS_ZOMBIE:
            return _orphaned_zombie(proc)
        return proc.environ().get(MARK) == mark
    except (OSError, psutil.Error):
        return False


def _orphaned_zombie(proc: psutil.Process) -> bool:
    """A dead process re-parented here from another process group: nobody else reaps it.
    (vigil starts every child of its own either leading a group or in vigil's own group,
    so a child in a foreign group can only be an orphan.)"""
    group = os.getpgid(proc.pid)
    return proc.ppid() == os.getpid() and group not in (proc.pid, os.getpgrp())


def _kill(victims: Sequence[psutil.Process]) -> None:
    for proc in victims:
        try:
            proc.kill()  # psutil checks that the pid still names the same process
        except psutil.NoSuchProcess:
            pass
        except psutil.Error as exc:
            logger.debug("cannot kill %d: %s", proc.pid, exc)


def _reap(victims: Sequence[psutil.Process]) -> None:
    """Wait for ``victims`` to be gone, reaping those that are (or become) children here."""
    pending = list(victims)
    for _ in range(REAP_LOOKS):
        pending = [proc for proc in pending if not _gone(proc)]
        if not pending:
            return
        sleep(REAP_PAUSE_S)


def _gone(proc: psutil.Process) -> bool:
    if not proc.is_running():  # gone, or its pid names another process now
        return True
    try:
        return os.waitpid(proc.pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return False  # not a child here (yet): its dying parent, or init, reaps it
