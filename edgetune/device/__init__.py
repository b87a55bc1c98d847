"""The machine edgetune measures on: CPU identity, features and fingerprint (`cpu`), Arm cores and
big.LITTLE clusters (`arm`). A leaf: it imports nothing of edgetune, so every layer may use it."""
