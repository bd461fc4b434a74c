"""Build hook: compiles the always-on tier's C kernel (``agent/detect/_ranks.c``) next to its
source, for editable installs and wheels alike. Without a C compiler the build goes on and
vigil uses the Python reference of the same loop (slower, same numbers)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("agent/detect/_ranks.c")


def compile_kernel(root: Path) -> Path:
    """The compiled module's path; raises ``OSError``/``CalledProcessError`` on failure."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = root / SOURCE.with_name("_ranks" + suffix)
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    include = sysconfig.get_paths()["include"]
    command = [
        *cc,
        "-O2",
        "-fPIC",
        "-shared",
        "-std=c99",
        "-ffp-contract=off",  # no fused multiply-adds: the same numbers as numpy on every CPU
        f"-I{include}",
        str(root / SOURCE),
        "-o",
        str(target),
        "-lm",
    ]
    subprocess.run(command, check=True)
    return target


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        try:
            target = compile_kernel(root)
        except (OSError, subprocess.CalledProcessError) as exc:
            self.app.display_warning(
                f"the rank kernel did not compile ({exc}): vigil will use its Python reference"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(target)] = str(target.relative_to(root))
