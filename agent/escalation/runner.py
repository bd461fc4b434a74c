"""A model's process, measured from outside: spawned in its own process group, fed on stdin,
read on stdout against a deadline, killed with its whole group at the timeout, and reaped
with ``wait4`` so its CPU time and peak memory come from the kernel, not from its own word.

While it lives (kept warm between wakes), its CPU time and peak RSS are read from ``/proc``
(psutil and ``VmHWM``); once reaped, its CPU time from the rusage ``wait4`` returns.

Its peak memory needs care: Linux's ``ru_maxrss`` is the largest resident set of every
address space the process had, and before its ``exec`` it had a copy of ours (or, spawned by
``vfork``, ours itself). A small model started from a large process would read as large. So
the child's ``VmHWM`` (its own address space's peak, which starts at the ``exec``) is sampled
while it runs, at least every ``SAMPLE_S``; ``ru_maxrss`` is taken only where it is above our
own peak at the spawn, which the copy cannot be.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

import psutil

from agent.clock import Clock

#: A child that writes more than this to stdout or stderr is killed: it is not answering.
MAX_OUTPUT = 1 << 20

#: How often a running child's peak memory is read while we wait on it.
SAMPLE_S = 0.2


class ChildError(Exception):
    """The child did not answer: ``reason`` says how (timeout, exit, too much output)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Usage:
    cpu_s: float
    peak_rss_kb: int | None


class Child:
    def __init__(self, argv: Sequence[str], clock: Clock) -> None:
        self._clock = clock
        self._spawn_peak_kb = _peak_rss_kb("self") or 0  # what ``ru_maxrss`` may carry over
        self._peak_kb: int | None = None  # the child's own, as sampled
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as one
        )
        self.pid = self.proc.pid
        self._out = bytearray()
        self._err = bytearray()
        self._open = {self.proc.stdout, self.proc.stderr}
        self.rusage: resource.struct_rusage | None = None
        self.returncode: int | None = None
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)

    @property
    def alive(self) -> bool:
        return self.rusage is None and self.proc.poll() is None

    def send(self, data: bytes, deadline: float) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        view = memoryview(data)
        with selectors.DefaultSelector() as sel:
            sel.register(stdin, selectors.EVENT_WRITE)
            while view:
                if not sel.select(self._left(deadline)):
                    raise ChildError("timeout while writing its input")
                try:
                    view = view[os.write(stdin.fileno(), view) :]
                except BrokenPipeError:
                    raise ChildError("it closed its input") from None

    def close_input(self) -> None:
        self._sample()  # a warm child's peak is behind it: read it before it exits
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def read_line(self, deadline: float) -> bytes:
        """The next line on stdout (without its newline)."""
        while b"\n" not in self._out:
            if self.proc.stdout not in self._open:
                raise ChildError(f"it ended without answering{self._stderr_hint()}")
            self._pump(deadline)
        line, _, rest = bytes(self._out).partition(b"\n")
        self._out[:] = rest
        return line

    def read_all(self, deadline: float) -> bytes:
        """Everything on stdout until it closes."""
        while self.proc.stdout in self._open:
            self._pump(deadline)
        out = bytes(self._out)
        self._out.clear()
        return out

    def _pump(self, deadline: float) -> None:
        with selectors.DefaultSelector() as sel:
            for pipe in self._open:
                assert pipe is not None
                sel.register(pipe, selectors.EVENT_READ)
            left = self._left(deadline)
            ready = sel.select(min(left, SAMPLE_S))
        self._sample()
        if not ready:
            if left <= SAMPLE_S:
                raise ChildError("timeout")
            return
        for key, _ in ready:
            chunk = os.read(key.fd, 65536)
            buffer = self._out if key.fileobj is self.proc.stdout else self._err
            if not chunk:
                self._open.discard(key.fileobj)
            buffer += chunk
            if len(buffer) > MAX_OUTPUT:
                raise ChildError(f"more than {MAX_OUTPUT} bytes of output")

    def _left(self, deadline: float) -> float:
        return max(0.0, deadline - self._clock.monotonic())

    def _stderr_hint(self) -> str:
        tail = bytes(self._err[-300:]).decode("utf-8", "replace").strip()
        return f" ({tail.splitlines()[-1]})" if tail else ""

    def kill(self) -> None:
        """Kill the whole group (a model's helpers too). Safe from another thread."""
        if self.rusage is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> int:
        """Wait for the child's end; its rusage is kept. Returns its exit code (negative: the
        signal that ended it)."""
        if self.rusage is None:
            self._sample()
            _, status, self.rusage = os.wait4(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.returncode  # reaped here: Popen must not wait again
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        assert self.returncode is not None
        return self.returncode

    def usage(self) -> Usage:
        """CPU seconds and the child's own peak RSS so far (the kernel's CPU total once
        reaped; the peak None where it could not be told)."""
        if self.rusage is not None:
            cpu = self.rusage.ru_utime + self.rusage.ru_stime
            max_rss_kb = int(self.rusage.ru_maxrss)  # kB on Linux
            if max_rss_kb > self._spawn_peak_kb:  # beyond what the copy of us could hold
                return Usage(cpu, max_rss_kb)
            return Usage(cpu, self._peak_kb)
        try:
            times = psutil.Process(self.pid).cpu_times()
        except psutil.Error:
            return Usage(0.0, self._peak_kb)
        self._sample()
        return Usage(times.user + times.system, self._peak_kb)

    def _sample(self) -> None:
        if self.rusage is None:
            peak = _peak_rss_kb(str(self.pid))  # None once it has exited
            if peak is not None:
                self._peak_kb = max(peak, self._peak_kb or 0)

    def exit_reason(self) -> str:
        code = self.reap()
        if code < 0:
            return f"killed by {signal.Signals(-code).name}{self._stderr_hint()}"
        return f"exited with {code}{self._stderr_hint()}"


def _peak_rss_kb(pid: str) -> int | None:
    """A process's peak resident set (``VmHWM``) in kB: ``pid`` a number or ``self``."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
