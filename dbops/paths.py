"""Where dbops keeps local state."""
from __future__ import annotations

import os
from pathlib import Path


def dbops_home() -> Path:
    """Folder for local state (`DBOPS_HOME`, default `.dbops` in the working directory)."""
    return Path(os.environ.get("DBOPS_HOME", ".dbops")).resolve()
