"""Measuring: the timing harness with foreign-load detection, the
ProfileDB that stores every measurement, and subprocess peak-memory measurement."""

from edgetune.measure.db import ProfileDB, default_db_path, node_signature
from edgetune.measure.load import LoadMonitor, LoadReport, measure_load, wait_for_quiet
from edgetune.measure.process_peak import measure_subprocess_peak
from edgetune.measure.timing import Timing, median_ci_rel, time_alternating, time_callable

__all__ = [
    "LoadMonitor", "LoadReport", "ProfileDB", "Timing", "default_db_path",
    "measure_load", "measure_subprocess_peak", "median_ci_rel", "node_signature",
    "time_alternating", "time_callable", "wait_for_quiet",
]
