"""Component ids of the whole dashboard, in one place so callbacks and tests cannot drift apart.

Ids are prefixed by the page they live on (``ov-`` for Overview); the app shell has none.
"""

from __future__ import annotations

# app shell
URL = "url"
BRAND = "brand"
NAV = "nav"
LANG_LINK = "lang-link"

# overview: filters
OV_LANG = "ov-lang"
OV_WINDOW = "ov-window"
OV_DATES = "ov-dates"
OV_DATES_BOX = "ov-dates-box"
OV_WINDOW_CAPTION = "ov-window-caption"
OV_CLASS = "ov-class"
OV_CATEGORIES = "ov-categories"
OV_STREET = "ov-street"
OV_COMMUNITY = "ov-community"
OV_BASIS = "ov-basis"
OV_BASEMAP = "ov-basemap"
OV_BASEMAP_OK = "ov-basemap-ok"  # dcc.Store: the basemap whose tiles loaded, or "offline:<name>"
OV_BASEMAP_NOTE = "ov-basemap-note"
OV_REFRESH = "ov-refresh"  # dcc.Interval: re-reads "now" so open/overdue stay live
OV_FILTERS = "ov-filters"  # dcc.Store: the normalised filter state every data callback reads

# overview: results
OV_KPIS = "ov-kpis"
OV_AS_OF = "ov-as-of"
OV_MAP = "ov-map"
OV_MAP_STATUS = "ov-map-status"
OV_SELECTED = "ov-selected"  # dcc.Store: grid code picked on the map, or None
OV_DETAIL = "ov-detail"
OV_DETAIL_CLOSE = "ov-detail-close"
