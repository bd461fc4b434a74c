"""setup_logging(): called only from cli.py. Logs go to stderr (journald adds timestamps)."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbosity: int = 0) -> None:
    """``verbosity``: -1 quiet (errors), 0 warnings and a few INFO lines, 1 info, 2 debug.

    ``VIGIL_LOG_LEVEL`` (a level name) overrides the default; ``-v``/``-q`` override that.
    """
    env = os.environ.get("VIGIL_LOG_LEVEL", "").upper()
    if verbosity == 0 and env in logging.getLevelNamesMapping():
        level = logging.getLevelNamesMapping()[env]
    else:
        level = {-1: logging.ERROR, 0: logging.INFO, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    under_journald = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journald:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt, datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("agent").setLevel(level)
