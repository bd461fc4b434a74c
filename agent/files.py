"""Files vigil writes whole: a crash leaves the old one or the new one, never half of it."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_replacing(path: Path, content: str, mode: int) -> None:
    """Write ``content`` to ``path`` with ``mode``: beside it first, then renamed over it
    (its folder made when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)
