"""Every user-visible string of the dashboard, in English and Simplified Chinese.

One table so that translating or rewording the interface touches one file. Pages and figure builders call
:func:`t`; nothing else hard-codes interface text. Names that come from the data (communities, categories) are
shown as stored, with both languages where the data has both.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qs

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")
DEFAULT_LANG: Lang = "en"

STRINGS: dict[str, dict[Lang, str]] = {
    # app shell
    "product": {"en": "gridgov", "zh": "网格治理"},
    "switch_lang": {"en": "中文", "zh": "English"},
    "nav_overview": {"en": "Overview", "zh": "总览"},
    "page_title_overview": {"en": "Overview · gridgov", "zh": "总览 · 网格治理"},
    "no_layout": {
        "en": "No current grid layout in this database yet. Build the demo (`gridgov demo`) or import a layout.",
        "zh": "数据库中还没有当前网格方案。请先生成演示数据（gridgov demo）或导入网格方案。",
    },
    # filters
    "filters": {"en": "Filters", "zh": "筛选"},
    "time_window": {"en": "Time window", "zh": "时间范围"},
    "window_7": {"en": "7 d", "zh": "7天"},
    "window_30": {"en": "30 d", "zh": "30天"},
    "window_90": {"en": "90 d", "zh": "90天"},
    "window_365": {"en": "1 yr", "zh": "1年"},
    "window_custom": {"en": "Custom", "zh": "自定义"},
    "window_caption": {"en": "{start} → {end}", "zh": "{start} 至 {end}"},
    "class": {"en": "Class", "zh": "类别"},
    "class_all": {"en": "All", "zh": "全部"},
    "class_component": {"en": "Components", "zh": "部件"},
    "class_event": {"en": "Events", "zh": "事件"},
    "categories": {"en": "Categories", "zh": "小类"},
    "categories_placeholder": {"en": "All categories", "zh": "全部小类"},
    "street": {"en": "Street (街道)", "zh": "街道"},
    "street_placeholder": {"en": "All streets", "zh": "全部街道"},
    "community": {"en": "Community (社区)", "zh": "社区"},
    "community_placeholder": {"en": "All communities", "zh": "全部社区"},
    "density_basis": {"en": "Colour by", "zh": "着色依据"},
    "basis_km2": {"en": "per km²", "zh": "每平方公里"},
    "basis_residents": {"en": "per 1,000 residents", "zh": "每千居民"},
    "basemap": {"en": "Basemap", "zh": "底图"},
    "basemap_blank": {"en": "Blank (offline)", "zh": "空白（离线）"},
    "basemap_positron": {"en": "Light streets (needs internet)", "zh": "浅色街道（需联网）"},
    "basemap_osm": {"en": "OpenStreetMap (needs internet)", "zh": "OpenStreetMap（需联网）"},
    "basemap_offline": {
        "en": "Street tiles could not be loaded (no internet connection?); the map stays blank.",
        "zh": "无法加载街道底图（未联网？），地图保持空白底图。",
    },
    # KPIs
    "as_of": {"en": "As of {now}", "zh": "截至 {now}"},
    "kpi_open": {"en": "Open now", "zh": "在办案件"},
    "kpi_open_note": {"en": "cases not yet closed", "zh": "尚未结案"},
    "kpi_overdue": {"en": "Overdue now", "zh": "超期案件"},
    "kpi_overdue_note": {"en": "{share} of open cases", "zh": "占在办 {share}"},
    "kpi_overdue_none": {"en": "none past their deadline", "zh": "无超期"},
    "kpi_reported": {"en": "Reported in window", "zh": "时段内上报"},
    "kpi_reported_note": {"en": "{per_day} per day", "zh": "日均 {per_day}"},
    "kpi_on_time": {"en": "On-time closure", "zh": "按期结案率"},
    "kpi_on_time_note": {"en": "of {closed} closed in window", "zh": "时段内结案 {closed} 件"},
    "kpi_on_time_none": {"en": "no cases closed in window", "zh": "时段内无结案"},
    # map
    "map_title": {"en": "Incident density by grid", "zh": "各网格案件密度"},
    "density_km2": {"en": "Incidents per km²", "zh": "案件/平方公里"},
    "density_residents": {"en": "Incidents per 1,000 residents", "zh": "案件/千居民"},
    "colorbar_km2": {"en": "per km²", "zh": "件/km²"},
    "colorbar_residents": {"en": "per 1,000<br>residents", "zh": "件/千人"},
    "hover_reported": {"en": "Reported", "zh": "上报"},
    "hover_density": {"en": "Density", "zh": "密度"},
    "hover_households": {"en": "Households", "zh": "户数"},
    "no_residents": {"en": "no residents", "zh": "无常住人口"},
    "empty_window": {"en": "No incidents in this window.", "zh": "该时段内没有案件。"},
    "map_hint": {"en": "Click a grid for its details.", "zh": "点击网格查看详情。"},
    "status_summary": {
        "en": "{reported} incidents in {grids} grids · darkest colour: {cap} {unit} or more",
        "zh": "{grids} 个网格共 {reported} 件 · 最深色：{cap} {unit}及以上",
    },
    # detail panel
    "detail_title": {"en": "Grid details", "zh": "网格详情"},
    "detail_empty": {"en": "Click a grid on the map to see its cases.", "zh": "在地图上点击网格查看案件。"},
    "detail_close": {"en": "Close", "zh": "关闭"},
    "detail_community": {"en": "Community", "zh": "社区"},
    "detail_households": {"en": "Households", "zh": "户数"},
    "detail_residents": {"en": "Residents", "zh": "人口"},
    "detail_area": {"en": "Area", "zh": "面积"},
    "detail_by_category": {"en": "Reported in window, by category", "zh": "时段内上报（按小类）"},
    "detail_open_cases": {"en": "Open cases ({n})", "zh": "在办案件（{n}）"},
    "detail_no_open": {"en": "No open cases.", "zh": "没有在办案件。"},
    "detail_more": {"en": "Showing the first {shown} of {total}.", "zh": "仅显示前 {shown} 件，共 {total} 件。"},
    "col_case": {"en": "Case / category", "zh": "案件 / 小类"},
    "col_status": {"en": "Status", "zh": "状态"},
    "col_due": {"en": "Due", "zh": "截止时间"},
    "overdue_by": {"en": "overdue {d}", "zh": "超期 {d}"},
    "due_in": {"en": "in {d}", "zh": "剩余 {d}"},
    "hours": {"en": "{n} h", "zh": "{n} 小时"},
    "days": {"en": "{n} d", "zh": "{n} 天"},
    "status_reported": {"en": "Reported", "zh": "已上报"},
    "status_registered": {"en": "Registered", "zh": "已立案"},
    "status_dispatched": {"en": "Dispatched", "zh": "已派遣"},
    "status_handled": {"en": "Handled", "zh": "已处置"},
}


def t(key: str, lang: str = DEFAULT_LANG, **values: object) -> str:
    """Look up an interface string and fill its ``{placeholders}``.

    Parameters
    ----------
    key
        Key of :data:`STRINGS`.
    lang
        ``"en"`` or ``"zh"``; anything else falls back to English.
    **values
        Values for the placeholders.

    Returns
    -------
    str
        The text in that language.

    Examples
    --------
    >>> t("kpi_on_time_note", "en", closed="1,204")
    'of 1,204 closed in window'
    """
    entry = STRINGS[key]
    text = entry.get(lang if lang in LANGS else DEFAULT_LANG, entry[DEFAULT_LANG])  # type: ignore[call-overload]
    return text.format(**values) if values else text


def lang_from_search(search: str | None) -> Lang:
    """The interface language asked for in a URL query string (``?lang=zh``), English otherwise."""
    values = parse_qs((search or "").lstrip("?")).get("lang", [])
    return "zh" if values and values[0] == "zh" else "en"


def normalize_lang(lang: str | None) -> Lang:
    """``"zh"`` or ``"en"`` from any user-supplied value."""
    return "zh" if lang == "zh" else "en"
