"""A review finding: what is wrong, which files, what to do, and whether it blocks the merge."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ERROR, WARNING = "error", "warning"

# Kinds of integrity finding.
EDITED, RENAMED, MOVED, DELETED, COLLISION, OUT_OF_ORDER, FAILED_ON_TARGET = (
    "edited", "renamed", "moved", "deleted", "version collision", "out of order", "failed on target")


@dataclass(frozen=True)
class Finding:
    """One integrity problem: its kind, against what (the base ref or the target), the files and the fix."""

    kind: str
    against: str
    message: str
    files: tuple[str, ...]
    fix: str
    severity: str = ERROR

    @property
    def blocks(self) -> bool:
        return self.severity == ERROR

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "against": self.against, "severity": self.severity, "message": self.message,
                "files": list(self.files), "fix": self.fix}

    def __str__(self) -> str:
        return f"{self.severity}: {self.kind} ({self.against}): {self.message}; {self.fix}"
