"""Production runtimes edgetune compares itself with, each as a ready-to-time callable.

Why here and not in kernels: these run the *whole* model their own way (ONNX Runtime with all graph
optimisations, ONNX Runtime static int8, torch eager); they are the bars a tuned plan must clear.
"""

from edgetune.peers.runtimes import Peer, build_peers

__all__ = ["Peer", "build_peers"]
