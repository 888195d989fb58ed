"""Integrity: what the branch did to scripts the base already has, and to versions the target already applied.

Against a git base, the branch's changes are the differences between the scripts where it forked from the base
and the work tree: an edit, rename or deletion of a versioned script the base still has blocks (Flyway would see a
checksum mismatch or a missing migration wherever the base is deployed); an added version that the base has too
(two branches both added V15) blocks; an added version below the base's latest is out of order.
"""
from __future__ import annotations

from pathlib import PurePosixPath

from dbops.engine.plan import FAILED, IGNORED, MISSING, PENDING, SUCCESS, Plan
from dbops.review.findings import (
    COLLISION,
    DELETED,
    EDITED,
    ERROR,
    FAILED_ON_TARGET,
    MOVED,
    OUT_OF_ORDER,
    RENAMED,
    WARNING,
    Finding,
)
from dbops.scripts.migrations import Catalog, Migration, Version


def _applied_kinds(catalog: Catalog) -> dict[str, Migration]:
    """Versioned and baseline scripts (the ones history rows pin down) by path."""
    return {m.path: m for m in catalog.versioned + catalog.baseline}


def against_base(head: Catalog, base: Catalog, fork: Catalog, label: str, out_of_order: bool) -> list[Finding]:
    """Findings for the branch's changes (fork → head) that clash with the base."""
    head_by_path, base_by_path, fork_by_path = _applied_kinds(head), _applied_kinds(base), _applied_kinds(fork)
    base_by_version = {m.version: m for m in base.versioned}
    findings: list[Finding] = []
    added = [m for path, m in head_by_path.items() if path not in fork_by_path]
    renamed_to: set[str] = set()
    for path, old in fork_by_path.items():
        if path not in base_by_path or base_by_path[path].checksum != old.checksum:
            continue  # the base changed or dropped it itself: not this branch's doing
        new = head_by_path.get(path)
        if new is not None:
            if new.checksum != old.checksum:
                findings.append(Finding(
                    EDITED, label, f"{path} is in {label} and this branch changed it (checksum {old.checksum} → {new.checksum})",
                    (path,), "revert the change to it and put the change in a new migration with the next free version"))
            continue
        twin = next((m for m in added if m.checksum == old.checksum and m.path not in renamed_to), None)
        if twin is not None:
            renamed_to.add(twin.path)
            findings.append(_rename(old, twin, label))
        else:
            findings.append(Finding(
                DELETED, label, f"{path} (version {old.version}) is in {label} and this branch deletes it", (path,),
                f"restore {path}; to undo what it did, add a new migration (or an undo script U{old.version}__….sql)"))
    latest = max(base_by_version, default=None)
    for new in added:
        if new.path in renamed_to or new.version is None or new.kind != "V":
            continue
        other = base_by_version.get(new.version)
        if other is not None and other.path != new.path:
            findings.append(Finding(
                COLLISION, label,
                f"version {new.version} is added by this branch as {new.path} and is already in {label} as {other.path}",
                (new.path, other.path), f"give {new.path} a version above {latest} (e.g. {_next(latest)}), after merging {label}"))
        elif other is not None and other.checksum != new.checksum:
            findings.append(Finding(
                COLLISION, label, f"{new.path} is added by this branch and {label} has a different file of the same name",
                (new.path,), f"merge {label} into the branch and give this branch's script a version above {latest}"))
        elif other is None and latest is not None and new.version < latest:
            findings.append(Finding(
                OUT_OF_ORDER, label,
                f"{new.path} adds version {new.version}, below {label}'s latest version {latest} ({base_by_version[latest].path})",
                (new.path, base_by_version[latest].path),
                f"give it a version above {latest} (e.g. {_next(latest)})" if not out_of_order
                else "allowed by --out-of-order / flyway.outOfOrder: it will be applied after newer versions",
                WARNING if out_of_order else ERROR))
    return findings


def _rename(old: Migration, new: Migration, label: str) -> Finding:
    same_identity = old.version == new.version and old.description == new.description
    if same_identity and PurePosixPath(old.path).name == PurePosixPath(new.path).name:
        return Finding(MOVED, label, f"{old.path} moved to {new.path} (same version, description and checksum)",
                       (old.path, new.path), "nothing to do: Flyway and dbops match applied scripts by version", WARNING)
    return Finding(RENAMED, label, f"{old.path} (version {old.version}) is in {label} and this branch renames it to {new.path}",
                   (old.path, new.path), f"rename it back to {PurePosixPath(old.path).name}: a deployed database knows it by "
                   "version and description, and would see it as missing and the new name as a new migration")


def _next(latest: Version | None) -> str:
    return str(latest.parts[0] + 1) if latest is not None else "1"


def against_target(plan: Plan, target: str, out_of_order: bool) -> list[Finding]:
    """Findings from the target's history: applied scripts edited, renamed or deleted, failed rows, versions below the
    target's latest that were never applied."""
    findings: list[Finding] = []
    pending = [e.migration for e in plan.entries if e.state in (PENDING, IGNORED) and e.migration is not None]
    latest = max((Version.parse(e.applied.version) for e in plan.entries if e.state == SUCCESS and e.applied
                  and e.applied.version and e.applied.success), default=None)
    for entry in plan.entries:
        if entry.state == MISSING and entry.applied is not None:
            twin = next((m for m in pending if m.checksum == entry.applied.checksum), None)
            if twin is not None:
                findings.append(Finding(
                    RENAMED, target, f"{entry.applied.script} (version {entry.applied.version}) is applied on the target and "
                    f"this branch renames it to {twin.path}", (entry.applied.script, twin.path),
                    f"rename {twin.path} back to {PurePosixPath(entry.applied.script).name}"))
                continue
            findings.append(Finding(DELETED, target, entry.problems[0], (entry.applied.script,),
                                    f"restore {entry.applied.script}, or run `dbops repair` on the target if it was removed on purpose"))
        elif entry.state == FAILED:
            findings.append(Finding(FAILED_ON_TARGET, target, entry.problems[0], (entry.path,),
                                    "clean up on the target and run `dbops repair` before this merges"))
        elif entry.state == IGNORED:
            findings.append(Finding(OUT_OF_ORDER, target, entry.problems[0], (entry.path,),
                                    f"give it a version above {latest} (or allow it with --out-of-order)"))
        elif entry.problems:
            kind = EDITED if any("checksum" in p for p in entry.problems) else RENAMED
            fix = ("revert it and put the change in a new migration" if kind == EDITED
                   else f"give it back its applied name {entry.applied.script if entry.applied else ''}")
            files = (entry.path,) if entry.applied is None or entry.applied.script == entry.script else (entry.path, entry.applied.script)
            findings += [Finding(kind, target, f"{entry.path}: {problem}", files, fix) for problem in entry.problems]
        elif (out_of_order and entry.state == PENDING and entry.migration is not None and entry.migration.version
              and entry.migration.kind == "V" and latest is not None and entry.migration.version < latest):
            findings.append(Finding(
                OUT_OF_ORDER, target, f"{entry.path} adds version {entry.migration.version}, below the target's latest {latest}",
                (entry.path,), "allowed by --out-of-order: it will be applied after newer versions", WARNING))
    return findings
