"""Rows the database refused at stop (a full disk, a lock held too long), kept in a file
beside it in the runtime folder until the next start commits them.

A full disk is the usual reason, so the file goes to the user's runtime folder (a tmpfs on
Linux: ``$XDG_RUNTIME_DIR``) when there is one, else beside the database. It survives a
restart of vigil, not of the machine; it is written 0600 in a 0700 folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import platformdirs

logger = logging.getLogger(__name__)

SPILL_VERSION = 1
#: The tables whose pending rows are kept: what a commit would have inserted or added.
TABLES = ("samples", "events", "counters")


def spill_path(db_path: str) -> Path:
    """Where the spill of ``db_path`` lives: one file per database."""
    name = "pending-" + hashlib.sha256(os.path.abspath(db_path).encode()).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (
        Path(platformdirs.user_runtime_dir("vigil"))
        if runtime and Path(runtime).is_dir()
        else Path(db_path).resolve().parent
    )
    return folder / f"{name}.jsonl"


def write_spill(db_path: str, rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> Path | None:
    """Write ``rows`` (table -> rows) next to any spill already there; the path, or None when
    it could not be written either (logged)."""
    path = spill_path(db_path)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            if f.tell() == 0:
                f.write(json.dumps({"vigil_spill": SPILL_VERSION, "db": db_path}) + "\n")
            for table in TABLES:
                for row in rows.get(table, ()):
                    f.write(json.dumps({"table": table, "row": dict(row)}) + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        logger.error("cannot keep the refused rows in %s either: %s", path, exc)
        return None
    return path


def read_spill(db_path: str) -> tuple[Path, dict[str, list[dict[str, Any]]]] | None:
    """The spilled rows of ``db_path`` (table -> rows), or None when there are none. A line
    that does not parse (the file torn by a crash while it was written) is skipped."""
    path = spill_path(db_path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.error("cannot read the rows kept in %s: %s", path, exc)
        return None
    rows: dict[str, list[dict[str, Any]]] = {table: [] for table in TABLES}
    for line in lines[1:]:
        try:
            item = json.loads(line)
            rows[item["table"]].append(dict(item["row"]))
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: a torn line skipped", path)
    return path, rows
