"""The Dagster code location: every definition under `defs/`, one folder per domain."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        # Steps run in the run's own process: the jobs here are short chains whose steps are CPU-bound on the
        # same 2 cores, and a subprocess per step re-imports Dagster, torch and the project (seconds each).
        dg.Definitions(executor=dg.in_process_executor),
    )
