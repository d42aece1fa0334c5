"""The intake API over HTTP: Open311 GeoReport v2 shaped JSON under ``/api/v2`` (reference: ``docs/api.md``).

Mounted on the dashboard's Flask server, which is the database's single writer. The logic lives in
:mod:`gridgov.intake`; this module maps it to routes, status codes and GeoReport's error shape
(``[{"code": 400, "description": "field 'lat': ..."}]``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pandas as pd
from flask import Blueprint, Response, request

from gridgov import intake
from gridgov.config import Settings
from gridgov.errors import AccessDenied, GridgovError, InputError, StoreError
from gridgov.store import Store

log = logging.getLogger("gridgov.api")

#: Largest accepted request body (bytes); larger ones get 413 before anything is parsed.
MAX_BODY = 64 * 1024
PREFIX = "/api/v2"


def _reply(obj: Any, status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json")


def _error(status: int, description: str) -> Response:
    return _reply([{"code": status, "description": description}], status)


class IntakeAPI:
    """The routes and their state: the store, the placing context (reloaded after a layout change) and the rate
    limiter."""

    def __init__(self, store: Store, settings: Settings, *, rate: float = 100.0, burst: int = 200) -> None:
        self.store = store
        self.settings = settings
        self.limiter = intake.RateLimiter(rate=rate, burst=burst)
        self._ctx: intake.IntakeContext | None = None
        #: Called with each accepted case id, e.g. to tell open pages that something arrived.
        self.listeners: list[Callable[[int], None]] = []

    def context(self) -> intake.IntakeContext:
        if self._ctx is None:
            self._ctx = intake.load_context(self.store, self.settings.calendar)
        return self._ctx

    def reload(self) -> None:
        """Forget the placing context (after the current layout or the units change)."""
        self._ctx = None

    # -- helpers ---------------------------------------------------------------------------------------------------

    def _payload(self) -> dict[str, Any] | None:
        if request.is_json:
            try:
                body = json.loads(request.get_data(cache=True) or b"null")
            except (ValueError, UnicodeDecodeError):
                raise InputError("the body is not valid JSON", field="body") from None
            return body if isinstance(body, dict) else None
        return {k: v for k, v in request.form.items()} if request.form else {}

    def _client(self, payload: dict[str, Any] | None = None) -> intake.Client:
        key = request.headers.get("X-API-Key") or request.args.get("api_key")
        if key is None and isinstance(payload, dict) and isinstance(payload.get("api_key"), str):
            key = payload["api_key"]
        client = intake.check_key(self.store, key)
        if not self.limiter.allow(client.client_id):
            raise _RateLimited()
        return client

    def handle(self, fn: Callable[[], Response]) -> Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, f"the body is larger than {MAX_BODY // 1024} KB")
        try:
            return fn()
        except _RateLimited:
            return _error(429, "too many requests for this API key; slow down")
        except AccessDenied as exc:
            return _error(401, str(exc))
        except InputError as exc:
            return _error(400, str(exc))
        except StoreError as exc:
            return _error(404 if str(exc).startswith("no service request") else 409, str(exc))
        except GridgovError as exc:
            return _error(400, str(exc))

    # -- routes ----------------------------------------------------------------------------------------------------

    def services(self) -> Response:
        return _reply(intake.services(self.context().categories))

    def post_request(self) -> Response:
        def run() -> Response:
            payload = self._payload()
            client = self._client(payload)
            if payload is None:
                raise InputError("the body must be a JSON object or a form", field="body")
            payload = {k: v for k, v in payload.items() if k != "api_key"}
            out = intake.submit_request(self.store, self.context(), client, payload)
            for listener in self.listeners:
                listener(int(out["service_request_id"]))
            return _reply([out], 201)
        return self.handle(run)

    def list_requests(self) -> Response:
        def run() -> Response:
            self._client()
            status = request.args.get("status")
            if status not in (None, "open", "closed"):
                raise InputError("must be open or closed", field="status")
            start, end = _when("start_date"), _when("end_date")
            try:
                limit = int(request.args.get("limit", "1000"))
            except ValueError:
                raise InputError("must be a whole number", field="limit") from None
            if not 1 <= limit <= 10_000:
                raise InputError("must be between 1 and 10000", field="limit")
            rows = self.store.service_requests(self.context().layout_id, status=status, start=start, end=end,
                                               grid=request.args.get("grid"), limit=limit)
            return _reply([intake.open311_record(r) for _, r in rows.iterrows()])
        return self.handle(run)

    def get_request(self, incident_id: str) -> Response:
        def run() -> Response:
            self._client()
            if not incident_id.isdigit() or len(incident_id) > 18:
                raise InputError("must be a service_request_id (digits)", field="service_request_id")
            rows = self.store.service_request(self.context().layout_id, int(incident_id))
            if rows.empty:
                raise StoreError(f"no service request {incident_id}")
            return _reply([intake.open311_record(rows.iloc[0])])
        return self.handle(run)

    def update(self, incident_id: str, action: str) -> Response:
        def run() -> Response:
            payload = self._payload() or {}
            client = self._client(payload)
            if not incident_id.isdigit() or len(incident_id) > 18:
                raise InputError("must be a service_request_id (digits)", field="service_request_id")
            status = intake.update_request(self.store, client, int(incident_id), action, note=payload.get("note"))
            return _reply([{"service_request_id": incident_id, "gridgov_status": status}])
        return self.handle(run)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("intake_api", __name__)
        for suffix, tag in (("", ""), (".json", "_json")):
            bp.add_url_rule(f"{PREFIX}/services{suffix}", f"services{tag}", self.services, methods=["GET"])
            bp.add_url_rule(f"{PREFIX}/requests{suffix}", f"post{tag}", self.post_request, methods=["POST"])
            bp.add_url_rule(f"{PREFIX}/requests{suffix}", f"list{tag}", self.list_requests, methods=["GET"])
            bp.add_url_rule(f"{PREFIX}/requests/<incident_id>{suffix}", f"one{tag}", self.get_request,
                            methods=["GET"])
        bp.add_url_rule(f"{PREFIX}/requests/<incident_id>/<action>", "update", self.update, methods=["POST"])
        return bp


class _RateLimited(Exception):
    pass


def _when(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise InputError(f"must be an ISO 8601 date or date-time, got {value[:40]!r}", field=name) from None
    if pd.isna(stamp):
        raise InputError("must be an ISO 8601 date or date-time", field=name)
    return (stamp.tz_localize(None) if stamp.tzinfo else stamp).to_pydatetime()


def install(server: Any, store: Store, settings: Settings) -> IntakeAPI:
    """Mount the API on a Flask server and return it (``.reload()`` after a layout change)."""
    api = IntakeAPI(store, settings)
    server.register_blueprint(api.blueprint())
    return api
