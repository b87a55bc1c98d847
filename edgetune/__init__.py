"""edgetune: measured design-space exploration for DNN deployment on edge CPUs.

Thread-pool hygiene must be in place before numpy, torch or onnxruntime load (several libraries
read these variables only once, at load): idle OpenMP/OpenBLAS workers that spin steal the cores
from the next library's pool and made mixed-library plans 2-2.6x slower on a 2-core machine.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
_os.environ.setdefault("KMP_BLOCKTIME", "0")
if "NUMBA_CACHE_DIR" not in _os.environ:  # JIT cache outside the (possibly read-only) install
    _os.environ["NUMBA_CACHE_DIR"] = _os.path.join(
        _os.environ.get("XDG_CACHE_HOME", _os.path.expanduser("~/.cache")), "edgetune", "numba"
    )

__version__ = "0.1.0"
