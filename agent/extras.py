"""How to add one of vigil's optional parts (a pip extra) to this installation of it."""

from __future__ import annotations

import json
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import agent


def install_command(extra: str) -> str:
    """The pip command that adds ``extra`` here: this environment's own Python (a bare ``pip``
    may be another environment's), and the source vigil was installed from (vigil is not on
    PyPI, where ``vigil`` is another project)."""
    python = shlex.quote(sys.executable)
    editable = "-e " if _installed_editable() else ""
    return f"{python} -m pip install {editable}{shlex.quote(requirement(extra))}"


def requirement(extra: str) -> str:
    """``<source>[extra]`` for pip: the folder or wheel vigil came from (pip records it in the
    installation, PEP 610), else the source tree this code runs from."""
    url = _installed_from()
    if url is None:
        tree = Path(agent.__file__).resolve().parent.parent
        if (tree / "pyproject.toml").is_file():
            return f"{tree}[{extra}]"
        return f"vigil[{extra}]"
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return f"{unquote(parsed.path)}[{extra}]"
    return f"vigil[{extra}] @ {url}"


def _installed_from() -> str | None:
    url = _direct_url().get("url")
    return url if isinstance(url, str) and url else None


def _installed_editable() -> bool:
    """Whether vigil was installed with ``pip install -e`` (the hint keeps it so: without
    ``-e`` pip would replace a developer's working tree install with a copy)."""
    info = _direct_url().get("dir_info")
    return isinstance(info, dict) and info.get("editable") is True


def _direct_url() -> dict[str, object]:
    """What pip recorded of where vigil came from (PEP 610), or {}."""
    try:
        text = metadata.distribution("vigil").read_text("direct_url.json")
        found = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
