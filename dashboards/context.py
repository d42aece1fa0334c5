"""The per-app context: the open store plus static data loaded once when the app starts.

``create_app`` builds an :class:`AppContext` and installs it with :func:`set_context`; layout functions read
only its static fields (options, GeoJSON, bounds), and callbacks use ``store`` for live queries. Pages and callbacks
call :func:`get_context` at request time (never keep it at import), so that :func:`reload_context` after a change of
the current layout (the Planner's adopt and undo) reaches every page. Keeping it in a
module rather than in a closure lets page modules stay plain modules that Dash Pages imports by itself.

One process serves one app, so one module-level context suffices. On a DuckDB file that process is the database's
single writer and sees every change itself. On PostgreSQL several processes (gunicorn workers, several servers) share
the database: each compares the store's :class:`~gridgov.store.revision.Stamp` at most every :data:`FOLLOW_S`
seconds (one small query per process, whatever the number of requests) and reloads its context when another process
adopted a layout or imported data; :func:`shared_stamp` also tells :mod:`dashboards.live` when cases arrived.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd

from dashboards.figures import bilingual, to_geojson
from gridgov.config import Settings
from gridgov.store import Store
from gridgov.store.revision import Stamp

T = TypeVar("T")
log = logging.getLogger("gridgov.dashboards")
#: Seconds a process sharing its store with others goes without asking whether they changed it.
FOLLOW_S = 2.0
_GRID_ATTRS = ["grid_code", "community_code", "street_code", "n_units", "area_m2", "households", "population"]


@dataclass(frozen=True)
class AppContext:
    """Everything pages need, loaded once per app.

    Parameters
    ----------
    settings
        The deployment's settings (``clock()`` is "now").
    store
        The one open store; only callbacks query it.
    layout_id
        The current layout, or None when the database has none yet.
    district_name
        From ``store.meta()``.
    grids
        One row per grid of the current layout (attributes, no geometry), in GeoJSON feature order.
    grid_geojson
        Grid polygons, feature ``id`` = grid code.
    layer_geojson
        Serialised GeoJSON of ``grids``, ``streets`` and ``communities`` for the map's line layers (served as
        static files by the app).
    streets, communities
        ``code, name, name_en, parent_code, label`` of the admin areas, by code.
    area_bounds
        ``(min_lon, min_lat, max_lon, max_lat)`` per admin area code.
    bounds
        The district's bounds.
    categories
        The category table.
    time_range
        First and last report time in the store when the app started (date picker limits).
    revision
        How many times this process reloaded its context.
    stamp
        On a shared (PostgreSQL) store, :attr:`Stamp.static` as read just before loading; None on DuckDB.
    """

    settings: Settings
    store: Store
    layout_id: int | None
    district_name: str
    grids: pd.DataFrame
    grid_geojson: dict[str, Any]
    layer_geojson: dict[str, str]
    streets: pd.DataFrame
    communities: pd.DataFrame
    area_bounds: dict[str, tuple[float, float, float, float]]
    bounds: tuple[float, float, float, float] | None
    categories: pd.DataFrame
    time_range: tuple[datetime, datetime] | None
    grid_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    revision: int = 0
    stamp: tuple[int, ...] | None = None
    _cache: dict[Hashable, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def cached(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()`` the first time ``key`` is asked for, the same object afterwards.

        For what pages derive from the static data alone (a page's initial map figure per language): it stays
        valid as long as this context, and :func:`reload_context` starts a new context with an empty cache. What
        ``build`` returns is shared by every request, so nobody may modify it.
        """
        with self._cache_lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]  # type: ignore[no-any-return]

    def geo_path(self, name: str) -> str:
        """Path of a static boundary layer (``grids``, ``streets``, ``communities``) served by the app.

        The query names the layout and the context's revision: browsers cache the files for an hour, and after an
        adoption the grid outlines must come from the new layout, not from the cache.
        """
        return f"/geo/{name}.geojson?v={self.layout_id or 0}.{self.revision}"

    @property
    def community_names(self) -> dict[str, str]:
        """Display name per community code."""
        return dict(zip(self.communities["code"], self.communities["label"], strict=True))

    def now(self) -> datetime:
        """The dashboard clock."""
        return self.settings.clock()


_CONTEXT: AppContext | None = None
_RELOAD = threading.Lock()
_LISTENERS: list[Callable[[AppContext], None]] = []


class _Follower:
    """The store's stamp as this process last read it, re-read when older than ``interval`` seconds."""

    def __init__(self, store: Store, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._read_at = float("-inf")

    def stamp(self, *, wait: bool) -> Stamp | None:
        """The stamp, re-read when due; None (or the previous one) when ``wait`` is False and another thread is
        reading it right now."""
        if time.monotonic() - self._read_at < self.interval:
            return self._stamp
        if not self._lock.acquire(blocking=wait):
            return self._stamp
        try:
            if time.monotonic() - self._read_at >= self.interval:
                self._stamp = self.store.stamp()
                self._read_at = time.monotonic()
            return self._stamp
        finally:
            self._lock.release()

    def expire(self) -> None:
        """Re-read the stamp at the next ask (this process just wrote)."""
        self._read_at = float("-inf")


_FOLLOWER: _Follower | None = None


def _shared(store: Store) -> bool:
    # Only a PostgreSQL store can have writers in other processes; a DuckDB file has one, this server.
    return getattr(store, "backend", "duckdb") == "postgresql"


def load_context(settings: Settings, store: Store, *, revision: int = 0) -> AppContext:
    """Read the static data of the current layout from ``store`` (a handful of queries, once).

    Parameters
    ----------
    settings
        The deployment's settings.
    store
        An open store.
    revision
        How many times the context was reloaded (:func:`reload_context`).

    Returns
    -------
    AppContext
    """
    # Read before the data: a change landing during the load makes the stamp older than the data, so the next check
    # reloads once more rather than missing the change.
    stamp = store.stamp().static if _shared(store) else None
    layout_id = store.current_layout_id()
    areas = store.admin_areas()
    areas["label"] = [bilingual(z, e) for z, e in zip(areas["name"], areas["name_en"], strict=True)]
    streets = areas[areas["level"] == "street"]
    communities = areas[areas["level"] == "community"]
    street_of_community = dict(zip(communities["code"], communities["parent_code"], strict=True))
    if layout_id is not None:
        gdf = store.layout_grids(layout_id)
    else:
        gdf = store.admin_areas("community").iloc[0:0].rename(columns={"code": "grid_code"})
        for col in _GRID_ATTRS:
            if col not in gdf:
                gdf[col] = pd.Series(dtype="float64")
    gdf = gdf.reset_index(drop=True)
    # Old layouts may lack street_code; the community's parent is the same street.
    gdf["street_code"] = gdf["street_code"].fillna(gdf["community_code"].map(street_of_community))
    grid_geojson = to_geojson(gdf, id_column="grid_code")
    layer_geojson = {
        "grids": json.dumps(grid_geojson, separators=(",", ":")),
        "streets": json.dumps(to_geojson(streets, id_column="code"), separators=(",", ":")),
        "communities": json.dumps(to_geojson(communities, id_column="code"), separators=(",", ":")),
    }
    area_bounds = {code: tuple(float(v) for v in geom.bounds)
                   for code, geom in zip(areas["code"], areas.geometry, strict=True) if not geom.is_empty}
    cols = ["code", "name", "name_en", "parent_code", "label"]
    return AppContext(
        settings=settings,
        store=store,
        layout_id=layout_id,
        district_name=_district_name(store.meta()),
        grids=pd.DataFrame(gdf[_GRID_ATTRS]),
        grid_geojson=grid_geojson,
        layer_geojson=layer_geojson,
        streets=pd.DataFrame(streets[cols]).reset_index(drop=True),
        communities=pd.DataFrame(communities[cols]).reset_index(drop=True),
        area_bounds=area_bounds,  # type: ignore[arg-type]
        bounds=store.district_bounds(),
        categories=store.categories(),
        time_range=store.incident_time_range(),
        grid_features={f["id"]: f for f in grid_geojson["features"]},
        revision=revision,
        stamp=stamp,
    )


def _district_name(meta: dict[str, str]) -> str:
    return bilingual(meta.get("district_name"), meta.get("district_name_en"))


def set_context(ctx: AppContext) -> None:
    """Install the context that pages and callbacks of this process use.

    On a PostgreSQL store the process also starts following other processes' writes (:func:`get_context`).
    """
    global _CONTEXT, _FOLLOWER
    _CONTEXT = ctx
    _FOLLOWER = _Follower(ctx.store, FOLLOW_S) if _shared(ctx.store) else None


def get_context() -> AppContext:
    """The context installed by ``create_app``, reloaded first when another process changed what it holds.

    The check costs a clock read; at most every :data:`FOLLOW_S` seconds one request of the process reads the
    store's stamp (never on a DuckDB file, which no other process writes while the server runs).

    Raises
    ------
    RuntimeError
        When no app has been created in this process.
    """
    ctx = _CONTEXT
    if ctx is None:
        raise RuntimeError("no dashboard context: build the app with dashboards.app.create_app(settings) first")
    follower = _FOLLOWER
    if follower is None or ctx.stamp is None:
        return ctx
    stamp = follower.stamp(wait=False)
    if stamp is None or stamp.static == ctx.stamp:
        return ctx
    # Another process adopted a layout, imported cases or changed the roster. One request reloads; the others
    # keep the context they have until it is installed.
    if not _RELOAD.acquire(blocking=False):
        return ctx
    try:
        if _CONTEXT is not ctx:
            return _CONTEXT
        log.info("context: the store changed in another process (%s -> %s): reloading", ctx.stamp, stamp.static)
        new = _reload_locked(ctx)
    finally:
        _RELOAD.release()
    _notify(new)
    return new


def shared_stamp() -> Stamp | None:
    """The store's stamp (at most :data:`FOLLOW_S` seconds old) when this process shares its store with others;
    None on a DuckDB file."""
    follower = _FOLLOWER
    return follower.stamp(wait=True) if follower is not None else None


def expire_stamp() -> None:
    """Make the next :func:`shared_stamp` re-read the store (after a write of this process)."""
    follower = _FOLLOWER
    if follower is not None:
        follower.expire()


def reload_context() -> AppContext:
    """Re-read the static data from the store (after the current layout changed) and install it.

    Requests already running keep the context they started with; every later request sees the new one. Other
    processes on a shared store reload by themselves within :data:`FOLLOW_S` seconds (:func:`get_context`).

    Raises
    ------
    RuntimeError
        When no app has been created in this process.
    """
    with _RELOAD:
        old = _CONTEXT
        if old is None:
            raise RuntimeError("no dashboard context: build the app with dashboards.app.create_app(settings) first")
        ctx = _reload_locked(old)
    _notify(ctx)
    return ctx


def _reload_locked(old: AppContext) -> AppContext:
    global _CONTEXT
    ctx = load_context(old.settings, old.store, revision=old.revision + 1)
    _CONTEXT = ctx
    expire_stamp()  # the cached stamp predates the change this reload follows
    return ctx


def _notify(ctx: AppContext) -> None:
    for listener in list(_LISTENERS):
        listener(ctx)


def on_reload(listener: Callable[[AppContext], None]) -> None:
    """Call ``listener(new_context)`` after every :func:`reload_context` (e.g. the intake API's ``reload``, which
    caches its own view of the current layout)."""
    _LISTENERS.append(listener)
