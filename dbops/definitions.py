"""The Definitions that workspace.yaml (and `dg dev`) load: scripts from DBOPS_LOCATIONS, target from DBOPS_URL."""
from __future__ import annotations

from dbops.orchestration.build import build_definitions

defs = build_definitions()
