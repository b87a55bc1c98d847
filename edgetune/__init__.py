"""edgetune: measured design-space exploration for DNN deployment on edge CPUs.

Thread-pool hygiene must be in place before numpy, torch or onnxruntime load (several libraries
read these variables only once, at load): idle OpenMP/OpenBLAS workers that spin steal the cores
from the next library's pool and made mixed-library plans 2-2.6x slower on a 2-core machine.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
_os.environ.setdefault("KMP_BLOCKTIME", "0")

__version__ = "0.1.0"
