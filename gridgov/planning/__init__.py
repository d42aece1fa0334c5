"""Responsibility-grid planning: balanced, contiguous, compact layouts over unit grids.

The public surface: :func:`plan_layout` returns a :class:`Plan` holding a validated :class:`GridLayout`;
:func:`share_out` shares grid counts out to communities; :class:`InfeasiblePlan` explains requests that cannot be met.
See docs/planning.md for the algorithm and its guarantees.
"""

from gridgov.planning.layout import GridLayout
from gridgov.planning.plan import InfeasiblePlan, Plan, PlanCancelled, PlanMetrics, plan_layout
from gridgov.planning.shareout import feasible_counts, range_counts, share_out, share_out_bound

__all__ = [
    "GridLayout",
    "InfeasiblePlan",
    "Plan",
    "PlanCancelled",
    "PlanMetrics",
    "feasible_counts",
    "plan_layout",
    "range_counts",
    "share_out",
    "share_out_bound",
]
