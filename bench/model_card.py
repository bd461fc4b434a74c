"""Write a benchmark's figures into a model card's ``detector`` section (shared by the
benches that measure the always-on tier; ``models/build_tiny.py`` keeps the section)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def update_detector(card: Path, key: str, figures: dict[str, Any]) -> None:
    """Set ``detector.<key>`` of the card at ``card`` to ``figures``, keeping the rest, in
    the card's own layout (2-space JSON, a final newline)."""
    raw = json.loads(card.read_text())
    raw.setdefault("detector", {})[key] = figures
    card.write_text(json.dumps(raw, indent=2) + "\n")
