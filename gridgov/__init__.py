"""gridgov: management grids, grid workers and incidents for a city district.

The public surface is re-exported here and imported lazily, so ``import gridgov`` (and the CLI's start) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Settings": "gridgov.config",
    "WorkCalendar": "gridgov.config",
    "GridgovError": "gridgov.errors",
    "InputError": "gridgov.errors",
    "InfeasibleError": "gridgov.errors",
    "StoreError": "gridgov.errors",
    "Store": "gridgov.store",
    "load_categories": "gridgov.incidents",
    "due_times": "gridgov.incidents",
    "build_demo_file": "gridgov.demo",
    "ingest_file": "gridgov.ingest",
    "build_units": "gridgov.units",
    "adjacency": "gridgov.units",
    "plan_layout": "gridgov.planning",
    "assign_grid_codes": "gridgov.codes",
    "code_mapping": "gridgov.codes",
    "reissue_codes": "gridgov.codes",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gridgov' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
