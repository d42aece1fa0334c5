"""The planning engine: recursive weighted bisection, then boundary moves for balance and compactness.

Everything here works on unit *positions* (rows of a :class:`~gridgov.units.UnitGraph`) and grid indices
``0 … k-1``; :mod:`gridgov.planning.plan` turns requests into these calls and the result into a validated layout.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csgraph
from scipy.sparse.linalg import spsolve

#: Candidate cut directions tried at each bisection, as angles added to the region's principal axis.
_ANGLES = (0.0, math.pi / 2, math.pi / 8, -math.pi / 8, math.pi / 4, -math.pi / 4)
#: Weight of compactness against balance when choosing a balancing move (share of a grid's target load).
_AFFINITY = 0.02
_EPS = 1e-9

Tick = Callable[[], None]


class _SplitFailed(Exception):
    """A region could not be cut into two connected sides with enough units for their grids."""


@dataclass(frozen=True)
class Part:
    """A set of units that must be cut into grids on its own (a community's connected piece, or an island), with
    the load its grids aim at, the band aimed for and the hard limits."""

    index: NDArray[np.int64]
    n_grids: int
    target: float
    hi: float
    lo: float
    cap: float
    floor: float


# --------------------------------------------------------------------------------------------------------------------
# Recursive bisection
# --------------------------------------------------------------------------------------------------------------------

def bisect(adj: sparse.csr_matrix, x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64],
           area: NDArray[np.float64], parts: list[Part], rng: np.random.Generator,
           tick: Tick, *, explore: bool = False) -> NDArray[np.int64]:
    """Grid index of every unit after cutting each part into its number of grids.

    Each region is cut in two by a straight line across it, at the point where the cumulative weight reaches
    ``k1 / k`` of the region's weight (``k1 = k // 2``). Several directions around the principal axis are tried and
    the shortest cut that leaves both halves in one piece wins; when none does, the stray pieces are handed to the
    side they touch and the weight is evened out again by moving boundary units.
    """
    labels = np.full(x.size, -1, dtype=np.int64)
    next_grid = 0
    for part in parts:
        stack: list[tuple[NDArray[np.int64], int]] = [(part.index, part.n_grids)]
        while stack:
            idx, k = stack.pop()
            if k == 1:
                labels[idx] = next_grid
                next_grid += 1
                continue
            k1 = k // 2
            side = _split(adj, idx, x[idx], y[idx], w[idx], area[idx], k1, k - k1, rng, explore=explore)
            tick()
            # B is pushed first so that A is cut next: grid numbers then follow the cuts through space.
            stack.append((idx[~side], k - k1))
            stack.append((idx[side], k1))
    return labels


def _split(adj: sparse.csr_matrix, idx: NDArray[np.int64], x: NDArray[np.float64], y: NDArray[np.float64],
           w: NDArray[np.float64], area: NDArray[np.float64], k1: int, k2: int,
           rng: np.random.Generator, *, balance_first: bool = False, explore: bool = False) -> NDArray[np.bool_]:
    """Side A (True) of the best straight cut of a region into weight shares ``k1 : k2`` (with ``explore``, a
    random one of the good cuts)."""
    n = idx.size
    if n < k1 + k2:
        raise _SplitFailed(f"{n} units cannot make {k1 + k2} grids")
    sub = adj[idx][:, idx].tocoo()
    rows, cols, data = sub.row, sub.col, sub.data
    weight = w if w.sum() > 0 else area
    total = float(weight.sum())
    target = total * k1 / (k1 + k2)
    a_total = float(area.sum())
    cx, cy = x - np.average(x, weights=area), y - np.average(y, weights=area)
    cov = np.cov(np.vstack([cx, cy]), aweights=area) if n > 2 else np.eye(2)
    _, vecs = np.linalg.eigh(cov)
    theta0 = math.atan2(vecs[1, -1], vecs[0, -1])
    if explore:
        theta0 += float(rng.uniform(0.0, math.pi))
    jitter = float(rng.uniform(-math.pi / 16, math.pi / 16))
    # Near the leaves one unit is a large share of a grid, so balance decides there and many directions are tried;
    # higher up any straight cut balances to a tiny share of a grid and the shortest one wins.
    fine = balance_first or k1 + k2 <= 4
    even = 0.002 if balance_first else 0.02
    angles = [theta0 + d for d in np.linspace(0.0, math.pi, 24, endpoint=False)] if fine else [
        theta0 + d + (jitter if j >= 2 else 0.0) for j, d in enumerate(_ANGLES)]
    grid_load = total / (k1 + k2)
    candidates = []
    for j, theta in enumerate(angles):
        proj = cx * math.cos(theta) + cy * math.sin(theta)
        order = np.argsort(proj, kind="stable")
        cum_w = np.cumsum(weight[order])
        cum_a = np.cumsum(area[order])
        lo, hi = k1, n - k2
        m_all = np.arange(lo, hi + 1)
        err_w = np.abs(cum_w[m_all - 1] - target)
        best = err_w.min()
        # Among prefixes that are as close in weight as the best (zero-weight units make ties), take the one
        # closest in area, so empty land is shared out too.
        close = np.flatnonzero(err_w <= best + 1e-12 * max(total, 1.0))
        err_a = np.abs(cum_a[m_all[close] - 1] - a_total * k1 / (k1 + k2))
        m = int(m_all[close[np.argmin(err_a)]])
        side = np.zeros(n, dtype=bool)
        side[order[:m]] = True
        cut = float(data[side[rows] != side[cols]].sum()) / 2.0
        err = float(err_w[close[np.argmin(err_a)]]) / grid_load if fine else 0.0
        # Cuts within 2 % of a grid's load (0.2 % when re-cutting for balance) count as balanced; among those the
        # shortest wins.
        candidates.append((err if err > even else 0.0, cut, j, side))
    candidates.sort(key=lambda c: (c[0], c[1], c[2]))
    if explore:
        # Any balanced cut up to 1.5 × the shortest, in random order.
        shortest = min((c[1] for c in candidates if c[0] == candidates[0][0]), default=0.0)
        good = [c for c in candidates if c[0] == candidates[0][0] and c[1] <= 1.5 * shortest + 1e-9]
        rest = [c for c in candidates if not (c[0] == candidates[0][0] and c[1] <= 1.5 * shortest + 1e-9)]
        candidates = [good[i] for i in rng.permutation(len(good))] + rest
    for *_, side in candidates:
        if _halves_connected(n, rows, cols, side):
            return side
    side = _repair(n, rows, cols, candidates[0][3], weight)
    side = _even_out(n, rows, cols, data, side, weight, target, k1, k2)
    if int(side.sum()) < k1 or int((~side).sum()) < k2:
        raise _SplitFailed("no connected cut leaves enough units on both sides")
    return side


def _halves_connected(n: int, rows: NDArray[np.int32], cols: NDArray[np.int32], side: NDArray[np.bool_]) -> bool:
    if n <= 400:
        return _halves_connected_small(n, rows, cols, side)
    same = side[rows] == side[cols]
    g = sparse.coo_matrix((np.ones(int(same.sum())), (rows[same], cols[same])), shape=(n, n))
    ncomp = csgraph.connected_components(g, directed=False, return_labels=False)
    return int(ncomp) == 2


def _halves_connected_small(n: int, rows: NDArray[np.int32], cols: NDArray[np.int32],
                            side: NDArray[np.bool_]) -> bool:
    """Union–find over the edges inside each side: cheaper than a sparse-graph call on small regions."""
    same = side[rows] == side[cols]
    parent = list(range(n))
    pieces = n
    for a, b in zip(rows[same].tolist(), cols[same].tolist(), strict=True):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a != b:
            parent[a] = b
            pieces -= 1
            if pieces == 2:
                return True
    return pieces == 2


def _refine_two(n: int, rows: NDArray[np.int64], cols: NDArray[np.int64], w: NDArray[np.float64],
                side: NDArray[np.bool_], want: float, tol: float, *, rounds: int = 40) -> NDArray[np.bool_]:
    """Bring the weight of side A nearer ``want`` with single moves and swaps across the cut, both sides staying
    connected (a small Kernighan–Lin-style pass; regions here have a few dozen units)."""
    side = side.copy()
    nbr: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        nbr[a].append(b)
    load = float(w[side].sum())
    for _ in range(rounds):
        err = abs(load - want)
        if err <= tol / 5:
            break
        border = [u for u in range(n) if any(side[v] != side[u] for v in nbr[u])]
        a_side = [u for u in border if side[u]]
        b_side = [u for u in border if not side[u]]
        options: list[tuple[float, tuple[int, ...]]] = []
        for u in a_side:
            options.append((abs(load - w[u] - want), (u,)))
        for v in b_side:
            options.append((abs(load + w[v] - want), (v,)))
        for u in a_side:
            for v in b_side:
                options.append((abs(load - w[u] + w[v] - want), (u, v)))
        options.sort()
        done = False
        for new_err, flip in options:
            if new_err >= err - 1e-12:
                break
            trial = side.copy()
            trial[list(flip)] = ~trial[list(flip)]
            if trial.any() and (~trial).any() and _halves_connected_small(n, rows, cols, trial):
                side = trial
                load = float(w[side].sum())
                done = True
                break
        if not done:
            break
    return side


def _repair(n: int, rows: NDArray[np.int32], cols: NDArray[np.int32], side: NDArray[np.bool_],
            weight: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Keep the heaviest piece of each side and grow both over the stray pieces breadth-first."""
    same = side[rows] == side[cols]
    g = sparse.coo_matrix((np.ones(int(same.sum())), (rows[same], cols[same])), shape=(n, n))
    _, comp = csgraph.connected_components(g, directed=False)
    comp_w = np.bincount(comp, weights=weight + 1e-9, minlength=comp.max() + 1)
    owner = np.full(n, -1, dtype=np.int64)
    queue: deque[int] = deque()
    for s in (True, False):
        cands = np.unique(comp[side == s])
        if cands.size == 0:
            continue
        main = int(cands[np.argmax(comp_w[cands])])
        members = np.flatnonzero(comp == main)
        owner[members] = int(s)
        queue.extend(members.tolist())
    csr = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    indptr, indices = csr.indptr, csr.indices
    while queue:
        u = queue.popleft()
        for v in indices[indptr[u]:indptr[u + 1]].tolist():
            if owner[v] < 0:
                owner[v] = owner[u]
                queue.append(v)
    owner[owner < 0] = 0
    return owner.astype(bool)


def _even_out(n: int, rows: NDArray[np.int32], cols: NDArray[np.int32], data: NDArray[np.float64],
              side: NDArray[np.bool_], weight: NDArray[np.float64], target: float, k1: int,
              k2: int) -> NDArray[np.bool_]:
    """Move boundary units across a cut until the weight of side A is as close to ``target`` as single moves get."""
    csr = sparse.csr_matrix((data + 1e-9, (rows, cols)), shape=(n, n))
    nbr = [csr.indices[csr.indptr[i]:csr.indptr[i + 1]].tolist() for i in range(n)]
    lens = [csr.data[csr.indptr[i]:csr.indptr[i + 1]].tolist() for i in range(n)]
    s = side.tolist()
    w = weight.tolist()
    count = [n - int(side.sum()), int(side.sum())]
    need = {True: k1, False: k2}
    w_a = float(weight[side].sum())
    frontier = set(np.unique(rows[side[rows] != side[cols]]).tolist())
    for _ in range(4 * n):
        diff = w_a - target
        short = next((sd for sd in (True, False) if count[int(sd)] < need[sd]), None)
        donor = (not short) if short is not None else (diff > 0)
        if count[int(donor)] <= need[donor]:
            break
        options = []
        for u in frontier:
            if s[u] != donor:
                continue
            touch = sum(ln for v, ln in zip(nbr[u], lens[u], strict=True) if s[v] != donor)
            new_diff = diff - w[u] if donor else diff + w[u]
            if touch <= 0 or (short is None and abs(new_diff) >= abs(diff) - _EPS):
                continue
            own = sum(ln for v, ln in zip(nbr[u], lens[u], strict=True) if s[v] == donor)
            options.append((abs(new_diff), own - touch, u))
        options.sort()
        best_u = next((u for _, _, u in options if _connected_without(u, donor, s, nbr)), -1)
        if best_u < 0:
            break
        s[best_u] = not donor
        count[int(donor)] -= 1
        count[int(not donor)] += 1
        w_a += -w[best_u] if donor else w[best_u]
        for v in (best_u, *nbr[best_u]):
            if any(s[x] != s[v] for x in nbr[v]):
                frontier.add(v)
            else:
                frontier.discard(v)
    return np.asarray(s, dtype=bool)


def _connected_without(u: int, label: object, assign: list, nbr: list[list[int]]) -> bool:
    """Whether the units labelled ``label`` stay connected when ``u`` leaves them (search stops once all of u's
    same-label neighbours are reached, which is quick unless u is a cut vertex)."""
    same = [v for v in nbr[u] if assign[v] == label]
    if len(same) <= 1:
        return True
    targets = set(same[1:])
    seen = {u, same[0]}
    queue = deque([same[0]])
    while queue:
        a = queue.popleft()
        for b in nbr[a]:
            if b not in seen and assign[b] == label:
                if b in targets:
                    targets.discard(b)
                    if not targets:
                        return True
                seen.add(b)
                queue.append(b)
    return not targets


# --------------------------------------------------------------------------------------------------------------------
# Local search
# --------------------------------------------------------------------------------------------------------------------

class Work:
    """Mutable state of the local search: assignment, members, loads and perimeters of every grid.

    Parameters
    ----------
    nbr, lens
        Allowed neighbours of each unit and the boundary shared with each (edges across a community border are left
        out when borders are respected, so no move can cross one).
    w, perim, area, x, y
        Weight, perimeter, area and centroid of each unit.
    labels
        Starting grid index of each unit (``0 … k-1``).
    target, hi, lo
        Per grid: the load aimed at, and the band the balancing aims for.
    cap, floor
        Per grid: the hard limits (the tolerance or the per-grid range).
    """

    def __init__(self, nbr: list[list[int]], lens: list[list[float]], w: list[float], perim: list[float],
                 area: list[float], x: NDArray[np.float64], y: NDArray[np.float64], labels: list[int], *,
                 target: list[float], hi: list[float], lo: list[float], cap: list[float],
                 floor: list[float]) -> None:
        self.nbr, self.lens, self.w, self.perim, self.area = nbr, lens, w, perim, area
        self.x, self.y = x, y
        self.adj: sparse.csr_matrix | None = None
        self.w_arr = np.asarray(w, dtype=float)
        self.area_arr = np.asarray(area, dtype=float)
        self.assign = list(labels)
        k = len(target)
        self.k = k
        self.members: list[set[int]] = [set() for _ in range(k)]
        self.load = [0.0] * k
        self.g_area = [0.0] * k
        self.g_perim = [0.0] * k
        for u, g in enumerate(self.assign):
            self.members[g].add(u)
            self.load[g] += w[u]
            self.g_area[g] += area[u]
            self.g_perim[g] += perim[u]
        for u, g in enumerate(self.assign):
            for v, ln in zip(nbr[u], lens[u], strict=True):
                if self.assign[v] == g:
                    self.g_perim[g] -= ln  # each internal edge is seen from both ends: twice its length in all
        self.target, self.hi, self.lo, self.cap, self.floor = target, hi, lo, cap, floor
        self.moves = 0

    # -- primitives -----------------------------------------------------------------------------------------------

    def shared_by_grid(self, u: int) -> dict[int, float]:
        """Boundary length ``u`` shares with each grid it touches (its own included)."""
        out: dict[int, float] = {}
        for v, ln in zip(self.nbr[u], self.lens[u], strict=True):
            g = self.assign[v]
            out[g] = out.get(g, 0.0) + ln
        return out

    def can_leave(self, u: int) -> bool:
        g = self.assign[u]
        return len(self.members[g]) > 1 and _connected_without(u, g, self.assign, self.nbr)

    def move(self, u: int, h: int, shared: dict[int, float] | None = None) -> None:
        g = self.assign[u]
        s = shared if shared is not None else self.shared_by_grid(u)
        wu = self.w[u]
        self.members[g].discard(u)
        self.members[h].add(u)
        self.load[g] -= wu
        self.load[h] += wu
        self.g_area[g] -= self.area[u]
        self.g_area[h] += self.area[u]
        self.g_perim[g] += -self.perim[u] + 2.0 * s.get(g, 0.0)
        self.g_perim[h] += self.perim[u] - 2.0 * s.get(h, 0.0)
        self.assign[u] = h
        self.moves += 1

    def dev(self, g: int, load: float | None = None) -> float:
        """How far a grid is outside its band, as a share of its target (0 inside)."""
        val = self.load[g] if load is None else load
        t = self.target[g] if self.target[g] > 0 else 1.0
        return max(val - self.hi[g], self.lo[g] - val, 0.0) / t

    def grid_neighbours(self, g: int) -> set[int]:
        out: set[int] = set()
        for u in self.members[g]:
            for v in self.nbr[u]:
                h = self.assign[v]
                if h != g:
                    out.add(h)
        return out

    # -- balancing ------------------------------------------------------------------------------------------------

    def balance(self, tick: Tick, rng: np.random.Generator, *, max_rounds: int = 6) -> None:
        """Move boundary units until every grid is inside its band or no move helps.

        The worst grid first tries cheap moves: one unit to (or from) a neighbour with ``load_g - load_h > w_u``
        (the sum of squared loads then falls strictly), a swap of two units, or a straight re-cut of the pair. When
        none helps and the grid is outside its hard limits (or a small effort budget remains), weight is passed
        along a chain of grids to one with room, or the grid is re-cut from scratch with its neighbours. Every
        such change is kept only when it lowers the worst deviation it touches.
        """
        budget = self.k // 4 + 1
        # Pair re-cuts do not always lower the sum of squares, so a hard limit on steps rules out any cycling.
        steps = 50 * self.k + 10_000
        for _ in range(max_rounds):
            heap = [(-self.dev(g), g) for g in range(self.k) if self.dev(g) > _EPS]
            heapq.heapify(heap)
            # The heaviest grids set max/mean, so they may always use the costly moves.
            top = 0.995 * max(self.load) if self.load else 0.0
            stuck: set[int] = set()
            progressed = False
            while heap and steps > 0:
                steps -= 1
                neg, g = heapq.heappop(heap)
                d = self.dev(g)
                if d <= _EPS or g in stuck:
                    continue
                if abs(d + neg) > 1e-12:
                    heapq.heappush(heap, (-d, g))
                    continue
                partner = self._step(g) or self._swap(g) or self._recombine_best(g)
                costly_ok = budget > 0 or self.outside_limits(g) or self.load[g] >= top
                if partner is None and costly_ok and budget > -10 * self.k:
                    budget -= 1
                    partner = self._chain(g) or self._recluster(g, rng)
                if partner is None:
                    stuck.add(g)
                    continue
                progressed = True
                tick()
                for h in (g, *partner):
                    if self.dev(h) > _EPS:
                        heapq.heappush(heap, (-self.dev(h), h))
            if not stuck or not progressed:
                return

    def lower_max(self, tick: Tick, rng: np.random.Generator, *, depth: int = 5, breadth: int = 6) -> None:
        """Bring the heaviest grid down, again and again, until no chain of moves can.

        The band lets a grid sit up to 1 % above its target, and heavy units can leave a grid stuck above it; since
        max/mean is made of the heaviest grid alone, this last phase works on it directly. The heaviest grid gives a
        boundary unit to a neighbour; when that neighbour then weighs as much as the old maximum, it passes a unit
        on in turn (an ejection chain, at most ``depth`` moves), and the chain is kept only when it ends in a grid
        with room, which may be one the chain passed through (a cyclic exchange: when units are heavy, often no
        grid has room for a whole one). When no chain works, the grid and one neighbour are cut anew
        (:meth:`_resplit`). Every grid stays connected and every grid touched ends below the old maximum, so each
        kept change lowers the maximum or the number of grids at it.
        """
        for _ in range(20 * self.k):
            top = max(self.load)
            g = self.load.index(top)
            limit = top - max(1e-6 * top, _EPS)
            if not self._eject(g, limit, depth, breadth, {g}) and not self._resplit(g, limit, rng):
                break
            tick()
        # The band is what compaction keeps: no grid may grow back over the maximum reached here.
        top = max(self.load)
        self.hi = [min(h, top) for h in self.hi]

    def _eject(self, src: int, limit: float, depth: int, breadth: int, chain: set[int]) -> bool:
        """Move a unit out of ``src`` so that it weighs at most ``limit``, pushing on along a chain while the
        receiver is over; undo everything and return False when no chain works."""
        need = self.load[src] - limit
        options: list[tuple[int, float, float, int, int]] = []
        for u in self.members[src]:
            wu = self.w[u]
            if wu < need - _EPS or self.load[src] - wu < self.floor[src] - _EPS:
                continue
            s = self.shared_by_grid(u)
            own = s.get(src, 0.0)
            for h, ln in s.items():
                if h == src:
                    continue
                over = self.load[h] + wu - limit
                if h in chain and over > 0:
                    continue
                # Chains that end here first (smallest unit that is enough), then the least overshoot to pass on;
                # the better boundary breaks ties.
                options.append((0, wu, -(ln - own), u, h) if over <= 0 else (1, over, -(ln - own), u, h))
        options.sort()
        tried = 0
        for goes_on, _, _, u, h in options:
            if tried >= breadth:
                break
            if goes_on and depth <= 1:
                continue
            if not self.can_leave(u):
                continue
            tried += 1
            self.move(u, h)
            if not goes_on or self._eject(h, limit, depth - 1, breadth, chain | {h}):
                return True
            self.move(u, src)
            self.moves -= 2
        return False

    def _resplit(self, g: int, limit: float, rng: np.random.Generator, *, tries: int = 48) -> bool:
        """Cut ``g`` and one neighbour anew so that both weigh at most ``limit``: connected pieces are grown from
        random seeds along random directions (a straight cut cannot pass a unit's weight in small enough steps),
        and of those that fit, the shortest cut is kept."""
        for h in sorted(self.grid_neighbours(g), key=lambda h: (self.load[h], h)):
            pool = self.members[g] | self.members[h]
            total = self.load[g] + self.load[h]
            least = total - limit
            if least > limit:
                continue
            units = sorted(pool)
            # A longer cut than today's (plus one unit side) would buy balance with ragged grids.
            now_cut = sum(ln for u in self.members[g] for v, ln in zip(self.nbr[u], self.lens[u], strict=True)
                          if self.assign[v] == h)
            slack = max((ln for u in pool for ln in self.lens[u]), default=0.0)
            best: tuple[float, frozenset[int]] | None = None
            for _ in range(tries):
                angle = rng.uniform(0.0, math.pi)
                dx, dy = math.cos(angle), math.sin(angle)
                seed = min(units, key=lambda u: self.x[u] * dx + self.y[u] * dy)
                side = {seed}
                weight = self.w[seed]
                frontier = {v for v in self.nbr[seed] if v in pool}
                while weight < least - _EPS and frontier:
                    fit = [v for v in frontier if weight + self.w[v] <= limit + _EPS]
                    if not fit:
                        break
                    v = min(fit, key=lambda v: self.x[v] * dx + self.y[v] * dy + rng.normal(0.0, 40.0))
                    side.add(v)
                    weight += self.w[v]
                    frontier.discard(v)
                    frontier.update(x for x in self.nbr[v] if x in pool and x not in side)
                if not least - _EPS <= weight <= limit + _EPS or len(side) == len(pool):
                    continue
                rest = pool - side
                if not self._connected_set(rest):
                    continue
                cut = sum(ln for u in side for v, ln in zip(self.nbr[u], self.lens[u], strict=True) if v in rest)
                if cut <= now_cut + slack and (best is None or cut < best[0]):
                    best = (cut, frozenset(side))
            if best is None:
                continue
            side = best[1]
            rest = pool - side
            to_g = side if len(side & self.members[g]) >= len(rest & self.members[g]) else rest
            for u in units:
                want = g if u in to_g else h
                if self.assign[u] != want:
                    self.move(u, want)
            return True
        return False

    def diffuse(self, tick: Tick, *, rounds: int = 12, margin: float = 0.01) -> None:
        """Spread the excess of over-limit grids to grids with room along the flows that solve the grid graph's
        Laplacian system (the least-squares flow), moving boundary units edge by edge.

        Used by minimal-change planning: when weight grew over a whole region, single moves at its heavy grids
        cannot help because their neighbours are full too, while the least-squares flow moves the least weight
        that brings every grid back under its cap.
        """
        for _ in range(rounds):
            load = np.asarray(self.load)
            cap = np.asarray(self.cap) * (1 - margin)
            over = load > np.asarray(self.cap) + _EPS
            if not over.any():
                return
            pairs = self._grid_pairs()
            if pairs.size == 0:
                return
            k = self.k
            adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(k, k)).tocsr()
            adj = ((adj + adj.T) > 0).astype(float)
            _, comp = csgraph.connected_components(adj, directed=False)
            excess = np.where(over, load - cap, 0.0)
            room = np.where(over, 0.0, np.maximum(cap - load, 0.0))
            e_c = np.bincount(comp, weights=excess)
            r_c = np.bincount(comp, weights=room)
            share = np.divide(e_c, r_c, out=np.zeros_like(e_c), where=r_c > 0)[comp]
            b = excess - room * np.minimum(share, 1.0)
            lap = sparse.diags(np.asarray(adj.sum(axis=1)).ravel() + 1e-9) - adj
            phi = spsolve(lap.tocsc(), b)
            moved_any = False
            flows = [(phi[g] - phi[h], g, h) for g, h in pairs.tolist() if phi[g] - phi[h] > _EPS]
            flows += [(phi[h] - phi[g], h, g) for g, h in pairs.tolist() if phi[h] - phi[g] > _EPS]
            for f, g, h in sorted(flows, reverse=True):
                moved = 0.0
                while moved < f:
                    options = []
                    for u in self.members[g]:
                        sh = self.shared_by_grid(u)
                        if h in sh and moved + self.w[u] <= f + 0.5 * self.w[u]:
                            options.append((-(sh[h] - sh.get(g, 0.0)), u))
                    options.sort()
                    u = next((u for _, u in options if self.can_leave(u)), -1)
                    if u < 0:
                        break
                    moved += self.w[u]
                    self.move(u, h)
                    moved_any = True
                tick()
            if not moved_any:
                return

    def _grid_pairs(self) -> NDArray[np.int64]:
        """Pairs ``g < h`` of neighbouring grids."""
        out: set[tuple[int, int]] = set()
        for g in range(self.k):
            for h in self.grid_neighbours(g):
                if g < h:
                    out.add((g, h))
        return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)

    def outside_limits(self, g: int) -> bool:
        """Whether a grid breaks the hard limits (tolerance cap or range), not just the band aimed at."""
        return self.load[g] > self.cap[g] + _EPS or self.load[g] < self.floor[g] - _EPS

    def _step(self, g: int) -> tuple[int, ...] | None:
        """One improving move for grid ``g`` (shed when over its band, take when under); the grids touched."""
        over = self.load[g] > self.hi[g]
        t = self.target[g] if self.target[g] > 0 else 1.0
        options: list[tuple[float, int, int, int]] = []
        if over:
            for u in self.members[g]:
                s = self.shared_by_grid(u)
                for h, ln in s.items():
                    if h == g or self.load[g] - self.load[h] <= self.w[u] + _EPS:
                        continue
                    new_g, new_h = self.load[g] - self.w[u], self.load[h] + self.w[u]
                    score = max(self.dev(g, new_g), self.dev(h, new_h)) - _AFFINITY * (ln - s.get(g, 0.0)) / max(
                        self.perim[u], _EPS)
                    options.append((score, u, g, h))
        else:
            for h in self.grid_neighbours(g):
                for u in self.members[h]:
                    s = self.shared_by_grid(u)
                    if g not in s or self.load[h] - self.load[g] <= self.w[u] + _EPS:
                        continue
                    new_g, new_h = self.load[g] + self.w[u], self.load[h] - self.w[u]
                    score = max(self.dev(g, new_g), self.dev(h, new_h)) - _AFFINITY * (s[g] - s.get(h, 0.0)) / max(
                        self.perim[u], _EPS)
                    options.append((score, u, h, g))
        del t
        options.sort()
        current = self.dev(g)
        for score, u, src, dst in options:
            if score >= current + _AFFINITY:
                break
            if self.can_leave(u):
                self.move(u, dst)
                return (src if dst == g else dst,)
        return None

    def _swap(self, g: int) -> tuple[int, ...] | None:
        """Exchange a unit of ``g`` with a lighter (or heavier) unit of a neighbour: the load passed is the
        difference of two unit weights, which is much finer than one unit when units are heavy."""
        over = self.load[g] > self.hi[g]
        before_g = self.dev(g)
        options: list[tuple[float, int, int, int, int]] = []
        for h in self.grid_neighbours(g):
            src, dst = (g, h) if over else (h, g)
            gap = self.load[src] - self.load[dst]
            if gap <= _EPS:
                continue
            give = [u for u in self.members[src] if any(self.assign[v] == dst for v in self.nbr[u])]
            take = [v for v in self.members[dst] if any(self.assign[x] == src for x in self.nbr[v])]
            before = max(before_g, self.dev(h))
            for a in give:
                for b in take:
                    delta = self.w[a] - self.w[b]
                    if not _EPS < delta < gap - _EPS:
                        continue
                    new_src, new_dst = self.load[src] - delta, self.load[dst] + delta
                    score = max(self.dev(src, new_src), self.dev(dst, new_dst))
                    if score < before - 1e-12:
                        options.append((score, a, b, src, dst))
        options.sort()
        for _, a, b, src, dst in options[:64]:
            new_src = (self.members[src] - {a}) | {b}
            new_dst = (self.members[dst] - {b}) | {a}
            if self._connected_set(new_src) and self._connected_set(new_dst):
                self.move(a, dst)
                self.move(b, src)
                return (dst if src == g else src,)
        return None

    def _connected_set(self, units: set[int]) -> bool:
        if not units:
            return False
        start = next(iter(units))
        seen = {start}
        queue = [start]
        while queue:
            a = queue.pop()
            for b in self.nbr[a]:
                if b in units and b not in seen:
                    seen.add(b)
                    queue.append(b)
        return len(seen) == len(units)

    def _recluster(self, g: int, rng: np.random.Generator) -> tuple[int, ...] | None:
        """Re-cut ``g`` with its neighbours (then with neighbours of neighbours) from scratch, balance first; kept
        when the worst of them improves."""
        if self.adj is None:
            return None
        ring = {g, *self.grid_neighbours(g)}
        done = self._recut_cluster(g, sorted(ring), rng)
        if done is None and self.outside_limits(g):
            ring2 = set(ring)
            for h in ring:
                ring2 |= self.grid_neighbours(h)
            done = self._recut_cluster(g, sorted(ring2), rng)
        return done

    def _recut_cluster(self, g: int, cluster: list[int], rng: np.random.Generator) -> tuple[int, ...] | None:
        assert self.adj is not None
        units = np.fromiter((u for c in cluster for u in self.members[c]), dtype=np.int64)
        units.sort()
        before = max(self.dev(c) for c in cluster)
        before_sq = sum(self.dev(c) ** 2 for c in cluster)
        stack: list[tuple[NDArray[np.int64], list[int]]] = [(units, cluster)]
        plan: list[tuple[NDArray[np.int64], int]] = []
        while stack:
            idx, grids = stack.pop()
            if len(grids) == 1:
                plan.append((idx, grids[0]))
                continue
            k1 = len(grids) // 2
            try:
                side = _split(self.adj, idx, self.x[idx], self.y[idx], self.w_arr[idx], self.area_arr[idx], k1,
                              len(grids) - k1, rng, balance_first=True)
            except _SplitFailed:
                return None
            stack.append((idx[side], grids[:k1]))
            stack.append((idx[~side], grids[k1:]))
        # Give each new piece the grid it overlaps most (by weight), so re-cutting keeps grids where they were.
        overlap = np.array([[sum(self.w[u] + 1e-9 for u in idx.tolist() if self.assign[u] == c) for c in cluster]
                            for idx, _ in plan])
        rows, cols = linear_sum_assignment(-overlap)
        named = {int(r): cluster[int(c)] for r, c in zip(rows, cols, strict=True)}
        if len({self.target[c] for c in cluster}) == 1:
            plan = [(idx, named[i]) for i, (idx, _) in enumerate(plan)]
        done: list[tuple[int, int]] = []
        for idx, grid in plan:
            for u in idx.tolist():
                if self.assign[u] != grid:
                    done.append((u, self.assign[u]))
                    self.move(u, grid)
        after = max(self.dev(c) for c in cluster)
        if after < before - 1e-12 and sum(self.dev(c) ** 2 for c in cluster) < before_sq:
            return tuple(c for c in cluster if c != g)
        for u, src in reversed(done):
            self.move(u, src)
        self.moves -= 2 * len(done)
        return None

    def _recombine_best(self, g: int) -> tuple[int, ...] | None:
        """Re-cut ``g`` together with one neighbour so that the worse of the two ends nearer its band."""
        over = self.load[g] > self.hi[g]
        nbrs = sorted(self.grid_neighbours(g), key=lambda h: (self.load[h] if over else -self.load[h], h))
        before_g = self.dev(g)
        for h in nbrs:
            before = max(before_g, self.dev(h))
            want = self.target[g] * (self.load[g] + self.load[h]) / max(self.target[g] + self.target[h], _EPS)
            side = self._pair_cut(g, h, want)
            if side is None:
                continue
            units, to_g, _ = side
            new_g = float(self.w_arr[units[to_g]].sum())
            new_h = self.load[g] + self.load[h] - new_g
            if max(self.dev(g, new_g), self.dev(h, new_h)) < before - 1e-12:
                self._apply(units, to_g, g, h)
                return (h,)
        return None

    def _pair_cut(self, g: int, h: int, want: float, *,
                  angles: int = 12) -> tuple[NDArray[np.int64], NDArray[np.bool_], float] | None:
        """Best cut of grids ``g`` and ``h`` together: the side of ``g`` weighs nearest ``want`` and both sides are
        connected (the shorter cut among near-equals), refined by single moves and swaps across the cut.

        Returns the units, which of them go to ``g``, and the cut length.
        """
        units = np.fromiter(self.members[g] | self.members[h], dtype=np.int64)
        units.sort()
        n = units.size
        if n < 2:
            return None
        local = {int(u): i for i, u in enumerate(units.tolist())}
        rows, cols, lens = [], [], []
        for i, u in enumerate(units.tolist()):
            for v, ln in zip(self.nbr[u], self.lens[u], strict=True):
                j = local.get(v)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    lens.append(ln)
        r, c, ln_arr = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), np.asarray(lens)
        w = self.w_arr[units]
        x, y = self.x[units] - self.x[units].mean(), self.y[units] - self.y[units].mean()
        total = float(w.sum())
        best: tuple[float, float, NDArray[np.bool_]] | None = None
        tol = 0.005 * max(self.target[g], _EPS)
        for order in self._cut_orders(x, y, r, c, angles):
            cum = np.cumsum(w[order])[:-1]
            for prefix_is_g in (True, False):
                goal = want if prefix_is_g else total - want
                m = int(np.argmin(np.abs(cum - goal))) + 1
                side = np.zeros(n, dtype=bool)
                side[order[:m]] = True
                if not prefix_is_g:
                    side = ~side
                err = abs(float(w[side].sum()) - want)
                if best is not None and err > best[0] + tol:
                    continue
                cut = float(ln_arr[side[r] != side[c]].sum()) / 2.0
                if best is not None and err >= best[0] - tol and cut >= best[1]:
                    continue
                if _halves_connected(n, r, c, side):
                    best = (err, cut, side)
        if best is None:
            return None
        side = _refine_two(n, r, c, w, best[2], want, tol)
        return units, side, float(ln_arr[side[r] != side[c]].sum()) / 2.0

    @staticmethod
    def _cut_orders(x: NDArray[np.float64], y: NDArray[np.float64], r: NDArray[np.int64], c: NDArray[np.int64],
                    angles: int) -> list[NDArray[np.int64]]:
        """Unit orders whose prefixes are tried as one side: along straight lines, then breadth-first from units at
        the edge of the region (every prefix of those is connected, which helps bent regions)."""
        n = x.size
        orders = []
        for theta in np.linspace(0.0, math.pi, angles, endpoint=False):
            orders.append(np.argsort(x * math.cos(theta) + y * math.sin(theta), kind="stable"))
        nbr: list[list[int]] = [[] for _ in range(n)]
        for a, b in zip(r.tolist(), c.tolist(), strict=True):
            nbr[a].append(b)
        seeds = {int(np.argmin(x)), int(np.argmax(x)), int(np.argmin(y)), int(np.argmax(y)),
                 int(np.argmin(x + y)), int(np.argmax(x + y)), int(np.argmin(x - y)), int(np.argmax(x - y))}
        for seed in sorted(seeds):
            seen = [False] * n
            seen[seed] = True
            out = [seed]
            i = 0
            while i < len(out):
                for b in sorted(nbr[out[i]]):
                    if not seen[b]:
                        seen[b] = True
                        out.append(b)
                i += 1
            if len(out) == n:
                orders.append(np.asarray(out, dtype=np.int64))
        return orders

    def _apply(self, units: NDArray[np.int64], to_g: NDArray[np.bool_], g: int, h: int) -> list[tuple[int, int]]:
        """Reassign a pair's units; returns ``(unit, previous grid)`` for each move (to undo).

        Neighbouring grids share a target, so the two sides may swap names; the naming that moves less weight (fewer
        households, fewer changed units) is used, which keeps grids where they were.
        """
        stay = sum(self.w[u] + 1e-9 for u, sd in zip(units.tolist(), to_g.tolist(), strict=True)
                   if self.assign[u] == (g if sd else h))
        swap = sum(self.w[u] + 1e-9 for u, sd in zip(units.tolist(), to_g.tolist(), strict=True)
                   if self.assign[u] == (h if sd else g))
        if self.target[g] == self.target[h] and swap > stay:
            to_g = ~to_g
        done = []
        for u, side in zip(units.tolist(), to_g.tolist(), strict=True):
            dst = g if side else h
            if self.assign[u] != dst:
                done.append((u, self.assign[u]))
                self.move(u, dst)
        return done

    def _chain(self, g: int, *, depth: int = 8) -> tuple[int, ...] | None:
        """Pass weight along the shortest chain of grids from ``g`` to one with room (or spare weight), re-cutting
        each consecutive pair; kept only when it reduces the total excess over the chain."""
        over = self.load[g] > self.hi[g]
        prev = {g: g}
        level = {g: 0}
        queue = deque([g])
        end = -1
        while queue and end < 0:
            a = queue.popleft()
            if level[a] >= depth:
                continue
            for b in sorted(self.grid_neighbours(a)):
                if b in prev:
                    continue
                prev[b], level[b] = a, level[a] + 1
                room = self.load[b] < self.target[b] if over else self.load[b] > self.target[b]
                if room:
                    end = b
                    break
                queue.append(b)
        if end < 0:
            return None
        path = [end]
        while path[-1] != g:
            path.append(prev[path[-1]])
        path.reverse()  # g … end
        before = sum(self.dev(p) ** 2 for p in path)
        done: list[tuple[int, int]] = []
        for a, b in itertools.pairwise(path):
            cut = self._pair_cut(a, b, self.target[a])
            if cut is None:
                break
            done.extend(self._apply(cut[0], cut[1], a, b))
        after = sum(self.dev(p) ** 2 for p in path)
        if after < before - 1e-12:
            return tuple(path[1:])
        for u, src in reversed(done):
            self.move(u, src)
        self.moves -= 2 * len(done)
        return None

    # -- compactness ----------------------------------------------------------------------------------------------

    def compact(self, tick: Tick, rng: np.random.Generator, *, passes: int = 4) -> None:
        """Move boundary units to the neighbouring grid they share more boundary with, keeping every load in band.

        A move shortens the total length of grid boundaries by twice its gain, which is what makes grids rounder.
        """
        n = len(self.assign)
        for _ in range(passes):
            boundary = [u for u in range(n) if any(self.assign[v] != self.assign[u] for v in self.nbr[u])]
            order = rng.permutation(len(boundary))
            moved = 0
            for i in order.tolist():
                u = boundary[i]
                g = self.assign[u]
                if len(self.members[g]) == 1:
                    continue
                s = self.shared_by_grid(u)
                own = s.get(g, 0.0)
                wu = self.w[u]
                if self.load[g] - wu < self.lo[g] - _EPS:
                    continue
                best_h, best_gain = -1, _EPS
                for h, ln in s.items():
                    gain = ln - own
                    if h != g and gain > best_gain and self.load[h] + wu <= self.hi[h] + _EPS:
                        best_h, best_gain = h, gain
                if best_h >= 0 and self.can_leave(u):
                    self.move(u, best_h, s)
                    moved += 1
                    if moved % 256 == 0:
                        tick()
            tick()
            if moved == 0:
                return

    def polsby_popper(self) -> list[float]:
        return [4.0 * math.pi * a / (p * p) if p > 0 else 0.0 for a, p in zip(self.g_area, self.g_perim, strict=True)]
