"""Calling Dash callbacks as plain functions in tests, and reading the text of the components they return."""

from __future__ import annotations

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
