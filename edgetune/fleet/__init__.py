"""The device fleet: profile one model across many boards of a Ray cluster, merged into the head's ProfileDB.

A board is a Ray node holding the custom resource `edgetune-device-<kind>: 1` (its one measurement slot; the
kind is the fingerprint id of its CPU, `identity.kind_id`). The profiler's work (per node: verify and time
every candidate; then the measurement tasks) is sent to one actor per board of the chosen kind, which holds
the graph and its samples; results come back with the board's fingerprint and are written to the head's DB
as they arrive, under the same keys a local profile writes. Ray is optional (`pip install edgetune[fleet]`):
only `cluster.py` and the modules it loads at run time import it.
"""
