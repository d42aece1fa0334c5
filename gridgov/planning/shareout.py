"""Sharing a number of grids out to communities (or other parts that cannot share a grid)."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gridgov.errors import InputError


def share_out(weights: ArrayLike, n_grids: int, *, max_grids: ArrayLike | None = None) -> NDArray[np.int64]:
    """Whole numbers of grids per part that make the heaviest mean grid load as light as possible.

    Every part gets one grid, then each further grid goes to the part whose mean load ``W_p / k_p`` is highest.
    That greedy order is optimal for the min–max objective: after any number of grids, no other share-out has a
    lower maximum ``W_p / k_p``.

    Parameters
    ----------
    weights
        Weight of each part (>= 0).
    n_grids
        Grids to share out (at least one per part).
    max_grids
        Most grids each part can take (its number of units); default unlimited.

    Returns
    -------
    numpy.ndarray
        Grids per part, summing to ``n_grids``.

    Raises
    ------
    InputError
        When ``n_grids`` is below the number of parts or above the sum of ``max_grids``.

    Examples
    --------
    >>> share_out([500, 300, 200], 5).tolist()
    [2, 2, 1]
    """
    w = np.asarray(weights, dtype=float)
    cap = np.full(w.size, max(n_grids, 1)) if max_grids is None else np.asarray(max_grids, dtype=np.int64)
    if n_grids < w.size:
        raise InputError(f"must be at least the number of parts ({w.size}), got {n_grids}", field="n_grids")
    if n_grids > cap.sum():
        raise InputError(f"must be at most the number of units ({int(cap.sum())}), got {n_grids}", field="n_grids")
    k = np.ones(w.size, dtype=np.int64)
    heap = [(-w[p], p) for p in range(w.size) if cap[p] > 1]
    heapq.heapify(heap)
    for _ in range(n_grids - w.size):
        _, p = heapq.heappop(heap)
        k[p] += 1
        if k[p] < cap[p]:
            heapq.heappush(heap, (-w[p] / k[p], p))
    return k


def share_out_bound(weights: ArrayLike, counts: ArrayLike) -> float:
    """Lowest max/mean a share-out allows: ``max_p (W_p / k_p) / (W / k)``; 1 means perfect balance is possible.

    Examples
    --------
    >>> round(share_out_bound([500, 300, 200], [2, 2, 1]), 3)
    1.25
    """
    w = np.asarray(weights, dtype=float)
    k = np.asarray(counts, dtype=float)
    total, n = float(w.sum()), float(k.sum())
    if total <= 0:
        return 1.0
    return float((w / k).max() / (total / n))


def feasible_counts(weights: ArrayLike, *, tolerance: float, max_unit: float, k_range: tuple[int, int],
                    max_grids: ArrayLike | None = None) -> list[int]:
    """Grid counts in ``k_range`` whose share-out bound and heaviest unit both fit ``1 + tolerance``.

    The greedy share-out grows one grid at a time, so the bound of every count is found in one pass.
    """
    w = np.asarray(weights, dtype=float)
    total = float(w.sum())
    lo, hi = k_range
    cap = np.full(w.size, max(hi, 1)) if max_grids is None else np.asarray(max_grids, dtype=np.int64)
    hi = min(hi, int(cap.sum()))
    if hi < w.size or total <= 0:
        return []
    k = np.ones(w.size, dtype=np.int64)
    heap = [(-w[p], p) for p in range(w.size) if cap[p] > 1]
    heapq.heapify(heap)
    out: list[int] = []
    for n in range(w.size, hi + 1):
        if n > w.size:
            if not heap:
                break
            _, p = heapq.heappop(heap)
            k[p] += 1
            if k[p] < cap[p]:
                heapq.heappush(heap, (-w[p] / k[p], p))
        if n >= lo:
            mean = total / n
            worst = float((w / k).max())
            if worst <= (1 + tolerance) * mean + 1e-9 and max_unit <= (1 + tolerance) * mean + 1e-9:
                out.append(n)
    return out


def range_counts(weight: float, lo: float, hi: float, n_units: int) -> tuple[int, int]:
    """Fewest and most grids that cut ``weight`` into grids whose mean load lies in ``[lo, hi]``.

    Returns ``(a, b)`` with ``a > b`` when no whole number of grids fits.

    Examples
    --------
    >>> range_counts(1000, 300, 500, 40)
    (2, 3)
    >>> range_counts(520, 300, 500, 40)
    (2, 1)
    """
    fewest = max(1, math.ceil(weight / hi - 1e-9))
    most = min(n_units, math.floor(weight / lo + 1e-9)) if lo > 0 else n_units
    return fewest, most


def pick_range_count(weight: float, lo: float, hi: float, n_units: int) -> int:
    """The feasible grid count whose mean load is nearest the middle of ``[lo, hi]`` (fewer grids on a tie)."""
    fewest, most = range_counts(weight, lo, hi, n_units)
    mid = (lo + hi) / 2.0
    options: Sequence[int] = range(fewest, most + 1)
    return min(options, key=lambda k: (abs(weight / k - mid), k))
