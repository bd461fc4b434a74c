"""Which platform vigil runs on (Linux or Termux on Android); read once at startup."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_TERMUX_PREFIX = Path("/data/data/com.termux/files/usr")


def is_termux(*, environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """True inside Termux.

    Current Termux Pythons report ``sys.platform == "android"``; older builds say
    ``"linux"``, but Termux always sets ``TERMUX_VERSION`` in its shells.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    return plat == "android" or bool(env.get("TERMUX_VERSION"))


def termux_prefix(*, environ: Mapping[str, str] | None = None) -> Path:
    """Termux's ``$PREFIX`` (its ``/usr``), or the app's standard path when unset."""
    env = os.environ if environ is None else environ
    prefix = env.get("PREFIX")
    return Path(prefix) if prefix else DEFAULT_TERMUX_PREFIX


def local_zone_name() -> str | None:
    """This machine's time zone as an IANA name (``Europe/Berlin``), or None when it cannot
    be told (a bare offset, no zone database): what a recorded trace names as its zone."""
    import tzlocal

    try:
        name = tzlocal.get_localzone_name()
    except Exception as exc:  # tzlocal raises several kinds when the system says nothing
        logger.debug("no local time zone name: %s", exc)
        return None
    return str(name) if name else None
