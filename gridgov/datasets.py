"""One path helper for the reference data that ships with gridgov (``geodata/``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """Return the path of a file shipped in ``geodata/``.

    Parameters
    ----------
    name
        File name inside ``geodata/``, e.g. ``"categories.csv"``.

    Returns
    -------
    Path
        Absolute path of the file (it exists).
    """
    p = Path(str(resources.files("geodata").joinpath(name)))
    if not p.exists():
        raise FileNotFoundError(f"geodata/{name} is not shipped with this gridgov install")
    return p
