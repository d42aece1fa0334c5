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
OV_LIVE = "ov-live"  # dcc.Interval: asks whether new cases arrived (dashboards.live)
OV_LIVE_REV = "ov-live-rev"  # dcc.Store: the data revision this page last drew
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

# staffing: state
ST_LANG = "st-lang"
ST_BASE = "st-base"  # dcc.Store: the saved assignments (rows of grid_code, worker_id, role, manual)
ST_EDITS = "st-edits"  # dcc.Store: the working assignments, saved or not
ST_SELECTED = "st-selected"  # dcc.Store: grid code picked on the map or in the table, or None
ST_ROSTER_REV = "st-roster-rev"  # dcc.Store: bumped when a worker is added, so dropdowns re-read the roster
ST_SCROLLED = "st-scrolled"  # dcc.Store: output of the clientside callback that scrolls the editor into view
ST_SHOWN = "st-shown"  # dcc.Store: key of the table rows the browser holds (for row-level Patch updates)

# staffing: controls
ST_STREET = "st-street"
ST_WORKER = "st-worker"  # coverage view: whose grids to highlight
ST_WORKER_NOTE = "st-worker-note"
ST_PRIMARY = "st-primary"
ST_BACKUPS = "st-backups"
ST_SAVE = "st-save"
ST_AUTO = "st-auto"
ST_DISCARD = "st-discard"
ST_UNSAVED = "st-unsaved"
ST_MESSAGE = "st-message"
ST_ADD_ID = "st-add-id"
ST_ADD_NAME = "st-add-name"
ST_ADD_HOURS = "st-add-hours"
ST_ADD_COMMUNITY = "st-add-community"
ST_ADD_BUTTON = "st-add-button"
ST_ADD_MESSAGE = "st-add-message"

# staffing: results
ST_KPIS = "st-kpis"
ST_AS_OF = "st-as-of"
ST_MAP = "st-map"
ST_MAP_STATUS = "st-map-status"
ST_TABLE = "st-table"
ST_DETAIL = "st-detail"
ST_DETAIL_BODY = "st-detail-body"
ST_EDITOR = "st-editor"
ST_CLOSE = "st-close"
ST_PICKS = "st-picks"
ST_PICK = "st-pick"  # pattern-matching type of the quick-pick buttons (index = grid code)
ST_NEED = "st-need"

# planner: state
PL_LANG = "pl-lang"
PL_REV = "pl-rev"  # dcc.Store: bumped whenever layouts change (saved, renamed, deleted, adopted)
PL_JOB = "pl-job"  # dcc.Store: id of the planning job this page follows, or None
PL_POLL = "pl-poll"  # dcc.Interval polling the planning job
PL_PICK = "pl-pick"  # dcc.Store: layout id picked in the scenarios list (rename/delete/export act on it)
PL_SYNC = "pl-sync"  # dcc.Store: output of the clientside callback that syncs the maps' view
PL_UNDO_OF = "pl-undo-of"  # dcc.Store: name of the archived layout that Undo would restore

# planner: scenario form
PL_NAME = "pl-name"
PL_MODE = "pl-mode"
PL_N_GRIDS = "pl-n-grids"
PL_N_GRIDS_BOX = "pl-n-grids-box"
PL_HOUSEHOLDS = "pl-households"
PL_HOUSEHOLDS_BOX = "pl-households-box"
PL_WEIGHT = "pl-weight"
PL_TOLERANCE = "pl-tolerance"
PL_RESPECT = "pl-respect"
PL_MINIMAL = "pl-minimal"
PL_SEED = "pl-seed"
PL_RUN = "pl-run"
PL_CANCEL = "pl-cancel"
PL_PROGRESS = "pl-progress"
PL_PROGRESS_BAR = "pl-progress-bar"
PL_PROGRESS_TEXT = "pl-progress-text"
PL_FORM_MSG = "pl-form-msg"
PL_SUGGEST = "pl-suggest"  # pattern-matching type of the "use this suggestion" buttons (index = "field:value")

# planner: comparison
PL_A = "pl-a"
PL_B = "pl-b"
PL_RANGE = "pl-range"
PL_MAP_A = "pl-map-a"
PL_MAP_B = "pl-map-b"
PL_MAP_CHANGE = "pl-map-change"
PL_TITLE_A = "pl-title-a"
PL_TITLE_B = "pl-title-b"
PL_CHANGE_NOTE = "pl-change-note"
PL_NOTE_A = "pl-note-a"
PL_NOTE_B = "pl-note-b"
PL_METRICS = "pl-metrics"
PL_CALIBRATION = "pl-calibration"

# planner: adopt
PL_ADOPT = "pl-adopt"
PL_ADOPT_CONFIRM = "pl-adopt-confirm"
PL_ADOPT_TEXT = "pl-adopt-text"
PL_ADOPT_YES = "pl-adopt-yes"
PL_ADOPT_NO = "pl-adopt-no"
PL_ADOPT_RESULT = "pl-adopt-result"
PL_UNDO = "pl-undo"

# planner: scenarios list
PL_LIST = "pl-list"
PL_ROW = "pl-row"  # pattern-matching type of the list's row buttons (index = layout id)
PL_PICKED = "pl-picked"
PL_RENAME_TO = "pl-rename-to"
PL_RENAME = "pl-rename"
PL_DELETE = "pl-delete"
PL_EXPORT_FMT = "pl-export-fmt"
PL_EXPORT = "pl-export"
PL_DOWNLOAD = "pl-download"
PL_LIST_MSG = "pl-list-msg"

# planner: is today's layout unusual?
PL_OUT_RUN = "pl-out-run"
PL_OUT_N = "pl-out-n"
PL_OUT_CANCEL = "pl-out-cancel"
PL_OUT_JOB = "pl-out-job"
PL_OUT_POLL = "pl-out-poll"
PL_OUT_PROGRESS = "pl-out-progress"
PL_OUT_PROGRESS_BAR = "pl-out-progress-bar"
PL_OUT_PROGRESS_TEXT = "pl-out-progress-text"
PL_OUT_RESULT = "pl-out-result"

# sign-in (top bar of every page)
LOGIN_USER = "login-user"
LOGIN_LOGOUT = "login-logout"

# worker: My grids
WK_LANG = "wk-lang"
WK_REV = "wk-rev"  # dcc.Store: bumped after each case action so the list and map re-read the store
WK_LIVE = "wk-live"  # dcc.Interval: asks whether new cases arrived (dashboards.live)
WK_LIVE_REV = "wk-live-rev"  # dcc.Store: the data revision this page last drew
WK_REFRESH = "wk-refresh"  # dcc.Interval: re-reads "now" and new cases
WK_SELECTED = "wk-selected"  # dcc.Store: incident id of the case shown in the detail sheet, or None
WK_TITLE = "wk-title"
WK_SUMMARY = "wk-summary"
WK_MAP = "wk-map"
WK_LEGEND = "wk-legend"
WK_EXPORT = "wk-export"
WK_MESSAGE = "wk-message"
WK_LIST = "wk-list"
WK_CASE = "wk-case"  # pattern-matching type of the list's case buttons (index = incident id)
WK_DETAIL = "wk-detail"
WK_DETAIL_BODY = "wk-detail-body"
WK_ACTIONS = "wk-actions"
WK_NOTE = "wk-note"
WK_ACCEPT = "wk-accept"
WK_HANDLE = "wk-handle"
WK_CLOSE = "wk-close"
WK_SHEET_MESSAGE = "wk-sheet-message"  # feedback shown inside the detail sheet (accepted, note missing)

# import
IM_LANG = "im-lang"
IM_UPLOAD = "im-upload"
IM_UPLOAD_BOX = "im-upload-box"
IM_UPLOADED = "im-uploaded"  # dcc.Store: {"token", "name", "size"} of the file waiting to be imported, or None
IM_FILE_NOTE = "im-file-note"
IM_PRESET = "im-preset"
IM_DATUM = "im-datum"
IM_CRS = "im-crs"
IM_CRS_BOX = "im-crs-box"
IM_MAPPING = "im-mapping"
IM_SOURCE = "im-source"
IM_START = "im-start"
IM_CANCEL = "im-cancel"
IM_JOB = "im-job"  # dcc.Store: {"id": job id} of the import this page follows, or None
IM_POLL = "im-poll"  # dcc.Interval polling the job
IM_PROGRESS = "im-progress"
IM_PROGRESS_BAR = "im-progress-bar"
IM_PROGRESS_TEXT = "im-progress-text"
IM_FORM_MSG = "im-form-msg"
IM_RESULT = "im-result"  # the outcome of the last import started here
IM_REV = "im-rev"  # dcc.Store: {"n", "batch"}, bumped when an import ends (the batch list re-reads)
IM_BATCH = "im-batch"  # dropdown of import batches
IM_STATS = "im-stats"
IM_CARDS = "im-cards"
IM_REASONS = "im-reasons"
IM_FIRST = "im-first"
IM_MAP = "im-outside-map"
IM_MAP_NOTE = "im-map-note"
