"""Running the ``gridgov`` command as a user does: a subprocess on a real database file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: The demo clock of the CLI tests: the morning after the small demo's year.
NOW = {"GRIDGOV_NOW": "2026-07-01T00:00"}


def run_cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    """``gridgov ARGS --db DB`` with the demo clock; never raises on a failing exit code."""
    return subprocess.run([sys.executable, "-m", "gridgov.cli", *args, "--db", str(db)], capture_output=True,
                          text=True, check=False, env={**os.environ, **NOW}, timeout=300, cwd=REPO)


def cli_json(*args: str, db: Path) -> Any:
    """``gridgov ARGS --json``: the parsed object (the command must succeed)."""
    done = run_cli(*args, "--json", db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
