"""Calling Dash callbacks as plain functions in tests, and reading the text of the components they return."""

from __future__ import annotations

import re
from contextvars import copy_context
from typing import Any


def call_as_triggered(prop_id: str, func: Any, *args: Any, value: Any = None) -> Any:
    """Call a callback function as if ``prop_id`` (with ``value``) had triggered it (Dash's documented unit-test
    pattern)."""
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    def run() -> Any:
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": prop_id, "value": value}]))
        return func(*args)

    return copy_context().run(run)


def texts(component: Any) -> list[str]:
    """All strings inside a Dash component tree, depth first."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [s for c in component for s in texts(c)]
    children = getattr(component, "children", None)
    return texts(children) if children is not None else []


_CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def form_token(html: str) -> str:
    """The CSRF token in the hidden field of a sign-in or sign-out form (``dashboards.access``)."""
    found = _CSRF_INPUT.search(html)
    assert found, "no csrf_token field in the form"
    return found.group(1)


def sign_in(client: Any, username: str, password: str, *, lang: str | None = None,
            headers: dict[str, str] | None = None, **fields: str) -> Any:
    """Sign ``client`` (Flask's test client) in as a browser does: GET the form, POST it with its token.

    Returns the POST's response (302 when the sign-in succeeded); ``headers`` go with both requests, ``fields``
    are further form fields (``next``).
    """
    query = f"?lang={lang}" if lang else ""
    token = form_token(client.get("/login" + query, headers=headers).get_data(as_text=True))
    return client.post("/login" + query, data={"username": username, "password": password, "csrf_token": token,
                                               **fields}, headers=headers)
