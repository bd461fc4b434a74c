"""``python -m agent`` runs the ``vigil`` command."""

from __future__ import annotations

import sys

from agent.cli import main

sys.exit(main())
