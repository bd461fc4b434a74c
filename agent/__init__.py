"""vigil: an always-on sensing agent with a tiny model. Importing this has no side effects."""

from __future__ import annotations

__version__ = "0.1.0"
