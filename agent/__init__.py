"""vigil: an always-on sensing agent with a tiny model.

Importing this has one side effect: OpenBLAS (numpy's) is held to the calling thread unless
the environment says otherwise. vigil does no large matrix work, and OpenBLAS's worker
threads spin on a core beside the loop's, out of the power meter's sight (about a tenth more
CPU around each model call, measured).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
