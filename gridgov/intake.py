"""Live intake: cases arriving one by one from hotline systems and apps, shaped like Open311 GeoReport v2.

The dashboard server is the database's single writer, so it serves this API (``dashboards/api.py`` is the HTTP
side; ``docs/api.md`` the reference). This module is the part without HTTP: API keys, payload validation that
names the field, placing the point in a unit and grid, the deadline, the insert, and lifecycle updates.

Keys look like ``gg_<client>_<secret>``; only the SHA-256 of the whole key is stored (the secret is 32 random
bytes, so a fast hash is safe and keeps every request cheap; a slow password hash would cost 50 ms a request).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridgov.config import WorkCalendar
from gridgov.errors import AccessDenied, InputError, StoreError
from gridgov.incidents import TRANSITIONS, due_times

if TYPE_CHECKING:
    from gridgov.locate import PointLocator
    from gridgov.store import Store

#: Longest accepted text per field (characters).
LIMITS = {"description": 4000, "address": 500, "reporter_name": 100, "reporter_phone": 40, "external_id": 100,
          "note": 2000}
_CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")
_KEY = re.compile(r"^gg_([a-z0-9][a-z0-9-]{1,39})_([A-Za-z0-9_-]{20,100})$")
#: Payload fields of POST /requests; anything else is refused, so a typo never silently drops data.
REQUEST_FIELDS = ("service_code", "lat", "long", "description", "address", "address_string", "external_id",
                  "reporter_name", "reporter_phone", "first_name", "last_name", "phone", "requested_datetime",
                  "api_key", "jurisdiction_id")
#: Lifecycle updates the API offers: action → status it leads to.
UPDATES = {"dispatch": "dispatched", "handled": "handled", "close": "closed", "cancel": "cancelled"}


# --------------------------------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------------------------------

def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_client(store: Store, client_id: str, name: str, *, at: datetime | None = None) -> str:
    """Register a client and return its key (shown once; only its hash is stored)."""
    if not _CLIENT_ID.match(client_id):
        raise InputError("must be 2-40 lower-case letters, digits or '-', starting with a letter or digit",
                         field="client_id")
    if not name.strip():
        raise InputError("must not be blank", field="name")
    key = f"gg_{client_id}_{secrets.token_urlsafe(32)}"
    store.insert_api_client(client_id, name.strip(), _digest(key), at or datetime.now().replace(microsecond=0))
    return key


@dataclass(frozen=True)
class Client:
    """An authenticated API client."""

    client_id: str
    name: str


def check_key(store: Store, key: str | None) -> Client:
    """The client a key belongs to; :class:`AccessDenied` for a missing, malformed, unknown or disabled key."""
    match = _KEY.match(key or "")
    if not match:
        raise AccessDenied("an API key is required (header X-API-Key or api_key)")
    row = store.api_client(match.group(1))
    if row is None or not hmac.compare_digest(row["key_sha256"], _digest(key or "")) or not row["active"]:
        raise AccessDenied("this API key is not valid")
    return Client(client_id=row["client_id"], name=row["name"])


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float = 100.0, burst: int = 200) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client_id: str, now: float | None = None) -> bool:
        """Take a token for ``client_id``; False when the bucket is empty."""
        t = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._state.get(client_id, (float(self.burst), t))
            tokens = min(float(self.burst), tokens + (t - last) * self.rate)
            if tokens < 1.0:
                self._state[client_id] = (tokens, t)
                return False
            self._state[client_id] = (tokens - 1.0, t)
            return True


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------

def _text(payload: dict[str, Any], name: str, *, alias: str | None = None) -> str | None:
    value = payload.get(name, payload.get(alias) if alias else None)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"must be text, got {type(value).__name__}", field=name)
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") and ch not in "\n\t" for ch in text):
        raise InputError("contains control or unassigned characters", field=name)
    limit = LIMITS.get(name, 500)
    if len(text) > limit:
        raise InputError(f"must be at most {limit} characters, got {len(text)}", field=name)
    return text or None


def _number(payload: dict[str, Any], name: str, low: float, high: float) -> float:
    value = payload.get(name)
    if value is None:
        raise InputError("is required", field=name)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"must be a number, got {type(value).__name__}", field=name)
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"must be a number, got {str(value)[:40]!r}", field=name) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise InputError(f"must be between {low:g} and {high:g}, got {str(value)[:40]}", field=name)
    return number


@dataclass
class IntakeContext:
    """What the API needs to place a case, loaded once per server (and after the layout changes).

    Built with :func:`load_context`; ``lock`` serialises inserts (ids are the next number).
    """

    locator: PointLocator
    categories: pd.DataFrame
    layout_id: int | None
    unit_grid: dict[int, str]
    calendar: WorkCalendar
    lock: threading.Lock = field(default_factory=threading.Lock)


def load_context(store: Store, calendar: WorkCalendar | None = None) -> IntakeContext:
    """Units (for point lookup), categories and the current layout's unit → grid map."""
    from gridgov.locate import PointLocator

    units = store.units()
    # One point per request: the exact tree answers in microseconds, a raster would cost seconds and ~100 MB to build.
    locator = PointLocator(units.geometry.to_numpy(), units["unit_id"].to_numpy(), max_cells=0)
    layout_id = store.current_layout_id()
    unit_grid: dict[int, str] = {}
    if layout_id is not None:
        lu = store.layout_units(layout_id)
        unit_grid = dict(zip(lu["unit_id"].astype(int), lu["grid_code"].astype(str), strict=True))
    return IntakeContext(locator=locator, categories=store.categories().set_index("code"), layout_id=layout_id,
                         unit_grid=unit_grid, calendar=calendar or WorkCalendar())


def validate_request(payload: Any, ctx: IntakeContext) -> dict[str, Any]:
    """Check a POST /requests payload; return the incident row (without id) or raise :class:`InputError`
    naming the field. Nothing is written."""
    if not isinstance(payload, dict):
        raise InputError("the body must be a JSON object or a form", field="body")
    unknown = sorted(str(k)[:40] for k in payload if k not in REQUEST_FIELDS)
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown[:5])}; known: {', '.join(REQUEST_FIELDS)}",
                         field=unknown[0])
    code = _text(payload, "service_code")
    if code is None:
        raise InputError("is required (GET /api/v2/services lists the codes)", field="service_code")
    if code not in ctx.categories.index:
        raise InputError(f"unknown service code {code[:40]!r} (GET /api/v2/services lists them)",
                         field="service_code")
    lat = _number(payload, "lat", -90.0, 90.0)
    lon = _number(payload, "long", -180.0, 180.0)
    unit = int(ctx.locator.locate(np.array([lon]), np.array([lat]))[0])
    if unit < 0:
        raise InputError(f"the point ({lat:.6f}, {lon:.6f}) is outside the district", field="lat")
    name = _text(payload, "reporter_name")
    if name is None:
        parts = [p for p in (_text(payload, "first_name"), _text(payload, "last_name")) if p]
        name = " ".join(parts) or None
    phone = _text(payload, "reporter_phone", alias="phone")
    if phone is not None and not re.fullmatch(r"[+0-9()\-\s]{5,40}", phone):
        raise InputError("must be a phone number (digits, spaces, + - ( ))", field="reporter_phone")
    reported = datetime.now().replace(microsecond=0)
    raw_time = payload.get("requested_datetime")
    if raw_time is not None:
        if not isinstance(raw_time, str):
            raise InputError("must be an ISO 8601 date-time text", field="requested_datetime")
        try:
            stamp = pd.Timestamp(raw_time)
        except (ValueError, TypeError):
            raise InputError(f"must be an ISO 8601 date-time, got {raw_time[:40]!r}",
                             field="requested_datetime") from None
        if pd.isna(stamp) or not 1900 <= stamp.year <= 2100:
            raise InputError("must be an ISO 8601 date-time between 1900 and 2100", field="requested_datetime")
        reported = stamp.tz_localize(None).to_pydatetime() if stamp.tzinfo else stamp.to_pydatetime()
    sla = float(ctx.categories.loc[code, "sla_hours"])
    due = pd.Timestamp(due_times(np.array([reported], dtype="datetime64[us]"), np.array([sla]), ctx.calendar)[0])
    return {
        "external_id": _text(payload, "external_id"), "category_code": code, "reported_at": reported,
        "due_at": due.to_pydatetime(), "status": "reported", "lon": lon, "lat": lat, "unit_id": unit,
        "address": _text(payload, "address", alias="address_string"), "description": _text(payload, "description"),
        "reporter_name": name, "reporter_phone": phone,
    }


def submit_request(store: Store, ctx: IntakeContext, client: Client, payload: Any) -> dict[str, Any]:
    """Validate and store one case; return its id, unit, grid and deadline (Open311 POST reply fields)."""
    row = validate_request(payload, ctx)
    row["source"] = client.client_id
    with ctx.lock:  # the store refuses an external id this client already sent, inside the inserting transaction
        incident_id = store.insert_one_incident(row)
    return {"service_request_id": str(incident_id), "service_notice": "", "account_id": None,
            "unit_id": row["unit_id"], "grid_code": ctx.unit_grid.get(row["unit_id"]),
            "expected_datetime": row["due_at"].isoformat(), "requested_datetime": row["reported_at"].isoformat()}


def update_request(store: Store, client: Client, incident_id: int, action: str, *, note: Any = None,
                   at: datetime | None = None) -> str:
    """Move a case along its lifecycle for an API client (``dispatch``, ``handled``, ``close``, ``cancel``)."""
    to = UPDATES.get(action)
    if to is None:
        raise InputError(f"must be one of {', '.join(UPDATES)}, got {str(action)[:40]!r}", field="action")
    if note is not None and not isinstance(note, str):
        raise InputError("must be text", field="note")
    text = _text({"note": note}, "note")
    row = store.incident_row(incident_id)
    if row is None:
        raise StoreError(f"no service request {incident_id}")
    status = str(row["status"])
    if to not in TRANSITIONS.get(status, ()):
        allowed = ", ".join(a for a, s in UPDATES.items() if s in TRANSITIONS.get(status, ())) or "none"
        raise InputError(f"a {status} request cannot be {to}; allowed now: {allowed}", field="action")
    store.record_incident_event(incident_id, expected=status, status=to, at=at or datetime.now().replace(
        microsecond=0), actor=f"api:{client.client_id}", note=text, event=to)
    return to


def open311_record(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """One case as a GeoReport v2 service request (plus gridgov's status, grid and unit). Never personal data."""
    def iso(value: Any) -> str | None:
        return None if value is None or pd.isna(value) else pd.Timestamp(value).isoformat()

    status = str(row["status"])
    return {
        "service_request_id": str(int(row["incident_id"])),
        "status": "open" if status in ("reported", "registered", "dispatched", "handled") else "closed",
        "gridgov_status": status,
        "service_code": row["category_code"], "service_name": row["name_en"], "service_name_zh": row["name_zh"],
        "description": None if pd.isna(row["description"]) else row["description"],
        "address": None if pd.isna(row["address"]) else row["address"],
        "lat": float(row["lat"]), "long": float(row["lon"]),
        "requested_datetime": iso(row["reported_at"]), "updated_datetime": iso(row["updated_at"]),
        "expected_datetime": iso(row["due_at"]), "closed_datetime": iso(row["closed_at"]),
        "grid_code": None if pd.isna(row["grid_code"]) else row["grid_code"], "unit_id": int(row["unit_id"]),
        "external_id": None if pd.isna(row["external_id"]) else row["external_id"], "source": row["source"],
    }


def services(categories: pd.DataFrame) -> list[dict[str, Any]]:
    """GET /services: our categories as GeoReport services."""
    frame = categories.reset_index() if "code" not in categories.columns else categories
    return [{"service_code": r["code"], "service_name": r["name_en"], "service_name_zh": r["name_zh"],
             "description": f"{r['name_en']} ({r['class']}); time limit {r['sla_hours']:g} working hours",
             "metadata": False, "type": "realtime", "keywords": r["name_zh"], "group": r["class"],
             "sla_hours": float(r["sla_hours"])} for _, r in frame.iterrows()]
