"""The bridge from measurements to plans and the `tune` use case after profiling.

design_space: Graph + ProfileDB -> DesignSpace (read once, viewed per precision set). candidates: the
plans worth measuring, compiled. verdict: the chosen plan against the peers. loop: `tune`, in named
steps. results: the typed hand-offs (`TuneConfig`, `TuneResult`, `ReportData`). report_data: the
computed parts of the report's data. Nothing here writes the report: commands/tune.py does.
"""
