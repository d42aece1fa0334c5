"""Run the gridgov demo dashboard on 127.0.0.1:8050 (builds the demo database on first run; demo users allowed)."""

from gridgov.config import Settings
from gridgov.serve import run

if __name__ == "__main__":
    run(Settings.from_env(), demo=True)
