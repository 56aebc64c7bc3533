"""Full runs of the examples, shared by the tests that look at them: each runs once per
test run (examples/results_table.py's RUNS, through each example's main())."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@functools.cache
def results_table():
    """examples/results_table.py as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location("results_table", EXAMPLES / "results_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


@functools.cache
def full_run(run: str) -> dict:
    """RUNS[run] with the example's full default settings, JSON-ready. The caller
    clears $NNBACKEND_MAX_STEPS and sets $NNBACKEND_DATA where the run reads files."""
    return results_table().run_main(run)
