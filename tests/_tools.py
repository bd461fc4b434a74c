"""Test helper: find a system tool, skipping when it is missing unless CI requires it."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str) -> str:
    """Absolute path of ``name``; skip the test if absent, or fail when
    ``VIGIL_REQUIRE_SYSTEM_TOOLS=1`` (CI), so a missing tool never hides a test there."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("VIGIL_REQUIRE_SYSTEM_TOOLS") == "1":
            pytest.fail(f"{name} is not installed and VIGIL_REQUIRE_SYSTEM_TOOLS=1")
        pytest.skip(f"{name} is not installed")
    return path
