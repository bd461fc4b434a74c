"""``python -m agent.escalation.child``: the larger model's own process (task-type).

It reads one JSON request per line on stdin and answers one JSON line on stdout, until stdin
closes. The model is loaded by the first request and kept for the next ones (the parent keeps
the process only for ``keep_warm_s``). Nothing here is imported by the daemon: llama.cpp and
the HTTP client live and die with this process, and so does their memory.

Request: ``{"backend": "llama_cpp" | "openai", "messages": [...], "max_tokens": n, "seed": n,
"model": path-or-name, "threads": n, "url": ..., "api_key": ..., "timeout_s": s}``.
Answer: ``{"ok": true, "text": ..., "tokens_in": n, "tokens_out": n}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

#: Context window: the prompt is a few hundred tokens.
N_CTX = 2048


class _Models:
    """What this process has loaded, by backend and model."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[str, str], Any] = {}

    def get(self, request: dict[str, Any]) -> Any:
        key = (str(request["backend"]), str(request.get("model")))
        if key not in self._loaded:
            self._loaded[key] = _load(request)
        return self._loaded[key]


def _load(request: dict[str, Any]) -> Any:
    if request["backend"] == "llama_cpp":
        from llama_cpp import Llama

        return Llama(
            model_path=str(request["model"]),
            n_ctx=N_CTX,
            # Both, or the prompt would take every core (llama.cpp's threads spin-wait: on a
            # busy machine that costs many times the CPU).
            n_threads=int(request.get("threads", 1)),
            n_threads_batch=int(request.get("threads", 1)),
            seed=int(request.get("seed", 0)),
            verbose=False,
        )
    if request["backend"] == "openai":
        from openai import OpenAI

        return OpenAI(
            base_url=str(request["url"]),
            api_key=str(request.get("api_key") or "none"),
            timeout=float(request.get("timeout_s", 60.0)),
            max_retries=0,
        )
    raise ValueError(f"unknown backend {request['backend']!r}")


def answer(request: dict[str, Any], models: _Models) -> dict[str, Any]:
    model = models.get(request)
    options = {
        "messages": request["messages"],
        "max_tokens": int(request["max_tokens"]),
        "temperature": 0.0,
        "seed": int(request.get("seed", 0)),
    }
    if request["backend"] == "llama_cpp":
        reply = model.create_chat_completion(**options)
        text = reply["choices"][0]["message"]["content"]
        usage = reply.get("usage", {})
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
    else:
        reply = model.chat.completions.create(model=str(request["model"]), **options)
        text = reply.choices[0].message.content
        usage = reply.usage
        tokens_in = usage.prompt_tokens if usage is not None else None
        tokens_out = usage.completion_tokens if usage is not None else None
    return {"ok": True, "text": text or "", "tokens_in": tokens_in, "tokens_out": tokens_out}


def main() -> int:
    models = _Models()
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line), models)
        except Exception as exc:  # the parent records the reason; a traceback would be lost
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
