"""Where the shared corpora live (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "SER_DATA_DIR"
"""Environment variable that overrides the location of the shared corpora."""


def data_dir() -> Path:
    """Return the folder holding ``ravdess/``, ``emodb/`` and ``crema-d/``.

    ``$SER_DATA_DIR`` when set, else ``<repo>/../shared/data`` (the layout of the shared
    workspace, README of the data folder).
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root / ".." / "shared" / "data"
