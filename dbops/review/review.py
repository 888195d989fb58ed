"""Run a review: integrity against the base and the target, lint, the plan, and the scratch build."""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.errors import ConfigError, DbopsError
from dbops.lint.cache import LintCache
from dbops.lint.checks import ERROR, LintPlaceholders, lint_files
from dbops.lint.checks import Finding as LintFinding
from dbops.review import integrity, scratch
from dbops.review.base import Base, read_base
from dbops.review.findings import Finding
from dbops.review.plan import PlannedScript, pending_after, planned
from dbops.scripts.migrations import Catalog, discover
from dbops.scripts.sources import FolderSource, ScriptFile
from dbops.targets import open_target
from dbops.urls import redact

Log = Callable[[str], None]


@dataclass
class Review:
    """Everything `dbops review` found, and the verdict."""

    scripts: int
    base: Base | None = None
    target: str | None = None
    integrity: list[Finding] = field(default_factory=list)
    lint: list[LintFinding] = field(default_factory=list)
    plan: list[PlannedScript] = field(default_factory=list)
    plan_against: str = ""
    scratch: scratch.ScratchResult | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def blocking(self) -> list[str]:
        """One line per reason the branch may not merge."""
        reasons = [f"integrity: {f.message}" for f in self.integrity if f.blocks]
        reasons += [f"lint: {f.path}:{f.line}: {f.code} {f.message}" for f in self.lint if f.severity == ERROR]
        if self.scratch is not None and not self.scratch.ok:
            reasons.append(f"scratch build: {self.scratch.failure.splitlines()[0] if self.scratch.failure else ''}")
        return reasons

    @property
    def may_merge(self) -> bool:
        return not self.blocking


def run_review(settings: Settings, base_ref: str | None, url: str | None, scratch_url: str | None,
               build: bool = True, log: Log = print) -> Review:
    """Review the scripts of the settings' locations (the work tree) against `base_ref` and/or the target `url`."""
    clock = _Clock()
    snapshot = FolderSource(settings.locations).snapshot()
    catalog, lint_findings = lint_files(snapshot.files, settings.placeholders, settings.ignore_invalid_names, LintCache.default())
    review = Review(scripts=len(catalog.migrations) + len(catalog.undo) + len(catalog.baseline) + len(catalog.callbacks),
                    lint=lint_findings, seconds=clock.seconds)
    clock.lap("lint")
    base_catalog = None
    if base_ref:
        review.base = read_base(base_ref, settings.locations)
        if not review.base.has_ancestor:
            log(f"warning: HEAD and {base_ref} have no common ancestor in this clone (a shallow clone?): every difference "
                f"from {base_ref} counts as this branch's; fetch the history (git fetch --unshallow)")
        base_catalog = _catalog(review.base.files, settings, review.base.label)
        fork_catalog = base_catalog if review.base.fork == review.base.commit else _catalog(
            review.base.fork_files, settings, f"{review.base.fork[:12]} (where this branch left {base_ref})")
        review.integrity += integrity.against_base(catalog, base_catalog, fork_catalog, base_ref, settings.out_of_order)
    clock.lap("integrity")
    if url:
        engine = Engine(open_target(url), settings, snapshot=snapshot, values_needed=False)
        review.target = engine.target.redacted_url
        target_plan = engine.plan()
        review.integrity += integrity.against_target(target_plan, "target", settings.out_of_order)
        review.plan = planned(target_plan.pending(), engine.dialect)
        review.plan_against = f"the target {review.target}"
    else:
        review.plan = planned(pending_after(catalog, base_catalog, settings.out_of_order), None)
        review.plan_against = f"a database deployed from {review.base.label}" if review.base else "an empty database"
    clock.lap("plan")
    if build:
        review.scratch = scratch.build(scratch.server_for(url, scratch_url), settings, snapshot, log)
        clock.lap("scratch")
    return review


def _catalog(files: list[ScriptFile], settings: Settings, where: str) -> Catalog:
    """The base's scripts as lint reads them (placeholders without a value stand in as their names)."""
    try:
        return discover(files, LintPlaceholders(values=settings.placeholders), ignore_invalid_names=True)
    except DbopsError as exc:
        raise ConfigError(f"in {where}: {redact(str(exc))}") from None


class _Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
