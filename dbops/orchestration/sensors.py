"""git_sensor and codecommit_sensor: each new commit of a branch that changes a script becomes one migrate run."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Protocol

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from dbops.config import locations_from, read_flyway_conf
from dbops.errors import DbopsError
from dbops.orchestration.rollout import Rollout, describe, parallel_limit, rollout_requests
from dbops.orchestration.selection import expected_pending, pending_request, sensor_assets
from dbops.orchestration.tags import TAG_AUTHOR, TAG_COMMIT, TAG_INCLUDED, TAG_MESSAGE, TAG_REPOSITORY, TAG_SOURCE
from dbops.orchestration.translator import script_keys
from dbops.scripts.migrations import parse_name
from dbops.scripts.sources import CommitChange, CommitInfo
from dbops.urls import redact

TAG_BRANCH = "dbops/branch"
TAG_NEW_SCRIPTS = "dbops/new_scripts"
FIRST_LOOK = 50
MAX_WALK = {"git": 500, "codecommit": 100}
MESSAGE_LIMIT = 4000
LIST_LIMIT = 30


class Repository(Protocol):
    """What a sensor needs from a source: GitSource and CodeCommitSource."""

    label: str
    locations: tuple[str, ...]

    def describe(self) -> str: ...
    def refresh(self) -> None: ...
    def head(self) -> str: ...
    def has_commit(self, commit: str) -> bool: ...
    def changes(self, since: str | None, head: str | None = None, limit: int = 100) -> list[CommitChange]: ...
    def script_names(self, commit: str) -> list[str]: ...


@dataclass
class Watch:
    """What a sensor watches: repository (path, URL or CodeCommit name), branch, locations, region."""

    kind: str
    repository: str = ""
    branch: str = "main"
    locations: tuple[str, ...] = ("sql",)
    region: str | None = None
    client: Any = field(default=None, repr=False)

    @classmethod
    def from_env(cls, kind: str, environ: dict[str, str] | None = None) -> Watch:
        """DBOPS_GIT_REPOSITORY / DBOPS_GIT_BRANCH or DBOPS_CODECOMMIT_REPOSITORY / DBOPS_CODECOMMIT_BRANCH,
        plus AWS_REGION and the locations the code location reads (DBOPS_LOCATIONS, flyway.conf, default sql)."""
        env = dict(os.environ) if environ is None else environ
        prefix = "DBOPS_GIT" if kind == "git" else "DBOPS_CODECOMMIT"
        return cls(
            kind=kind,
            repository=env.get(f"{prefix}_REPOSITORY", "").strip(),
            branch=env.get(f"{prefix}_BRANCH", "").strip() or "main",
            locations=tuple(locations_from(env.get("DBOPS_LOCATIONS"), read_flyway_conf() if environ is None else None)),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        )

    @property
    def label(self) -> str:
        """`git:<path or redacted URL>` or `codecommit:<name>`, for messages."""
        return f"{self.kind}:{redact(self.repository)}"

    @property
    def setting(self) -> str:
        return "DBOPS_GIT_REPOSITORY" if self.kind == "git" else "DBOPS_CODECOMMIT_REPOSITORY"

    def source(self) -> Repository:
        if self.kind == "git":
            from dbops.scripts.git import GitSource

            return GitSource(self.repository, self.branch, self.locations)
        from dbops.scripts.codecommit import CodeCommitSource

        return CodeCommitSource(self.repository, self.branch, client=self.client, locations=self.locations, region=self.region)


@dataclass
class Decision:
    """What one evaluation decided: run `commit` (with the earlier commits `included`), or skip for `reason`; cursor = head.

    `changed` holds the repository paths of the scripts the run's commits changed (None on a first look:
    the run brings every script).
    """

    head: str
    commit: CommitInfo | None = None
    included: list[CommitInfo] = field(default_factory=list)
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    changed: set[str] | None = None


def decide(repo: Repository, branch: str, cursor: str | None, limit: int) -> Decision:
    """The sensor's logic without Dagster: which commit, if any, becomes a run."""
    repo.refresh()
    about = repo.describe() if cursor is None else ""
    head = repo.head()
    if cursor == head:
        return Decision(head, reason=f"no new commit on {branch} of {repo.label} (still {head[:12]})")
    notes: list[str] = []
    if cursor and not repo.has_commit(cursor):
        notes.append(f"the last handled commit {cursor[:12]} is no longer in {repo.label} (history rewritten?); starting again from {head[:12]}")
        cursor = None
        about = repo.describe()
    if cursor is None:
        recent = repo.changes(None, head, limit=FIRST_LOOK)
        touching = [c for c in recent if c.paths]
        commit = touching[0].commit if touching else recent[0].commit
        notes.append(f"first look at branch {branch} of {about}: one run brings the database to {commit.id[:12]}")
        return Decision(head, commit, notes=notes)
    changes = repo.changes(cursor, head, limit=limit)
    touching = [c for c in changes if c.paths]
    if len(changes) >= limit:
        notes.append(f"more than {limit} new commits; the run applies the scripts of the newest one that changes them")
    if not touching:
        newest = changes[0].commit if changes else None
        where = ", ".join(f"{loc}/" for loc in repo.locations)
        about = f" (newest {newest.id[:12]}: {_first_line(newest.message)})" if newest else ""
        return Decision(head, reason=f"{len(changes)} new commit(s) on {branch}, none changes a script under {where}{about}", notes=notes)
    changed = {path for change in touching for path in change.paths}
    return Decision(head, touching[0].commit, [c.commit for c in reversed(touching[1:])], notes=notes, changed=changed)


def compare_with_definitions(context: SensorEvaluationContext, names: list[str], changed: set[str] | None) -> tuple[list[str], str]:
    """Scripts the run's commits bring that have no asset in the loaded code location, and a sentence saying
    what happens to them (`changed`: repository paths the commits changed; None: every script)."""
    repository = context.repository_def
    if repository is None:
        return [], "the loaded definitions are not available to this evaluation; no comparison made"
    known = set(script_keys(repository.asset_graph))
    brought = None if changed is None else {PurePosixPath(path).name for path in changed}
    scripts = [n for n in names if _is_migration(n) and (brought is None or PurePosixPath(n).name in brought)]
    new = [n for n in scripts if n not in known]
    if not new:
        return [], f"the {len(scripts)} script(s) it brings are assets of the loaded code location"
    shown = ", ".join(new[:LIST_LIMIT]) + (f" and {len(new) - LIST_LIMIT} more" if len(new) > LIST_LIMIT else "")
    return new, (
        f"{len(new)} script(s) it brings have no asset in the loaded code location ({shown}): the run records "
        "their materializations under their asset keys as it applies them; reload the code location to see them as assets"
    )


def _is_migration(name: str) -> bool:
    base = PurePosixPath(name).name
    if not base.lower().endswith(".sql"):
        return False
    parsed = parse_name(base[: -len(".sql")] + ".sql")
    return parsed is not None and not isinstance(parsed, str) and parsed.kind in "VR"


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else ""


def run_request(repo: Repository, branch: str, decision: Decision, new_scripts: list[str]) -> RunRequest:
    """One migrate run for the decided commit: run_key = commit id; tags say where its scripts come from."""
    commit = decision.commit
    assert commit is not None
    tags = {
        TAG_SOURCE: "sensor",
        TAG_REPOSITORY: repo.label,
        TAG_BRANCH: branch,
        TAG_COMMIT: commit.id,
        TAG_AUTHOR: commit.author,
        TAG_MESSAGE: commit.message[:MESSAGE_LIMIT],
    }
    if decision.included:
        tags[TAG_INCLUDED] = ",".join(c.id for c in decision.included)
    if new_scripts:
        tags[TAG_NEW_SCRIPTS] = ",".join(new_scripts[:LIST_LIMIT]) + (",…" if len(new_scripts) > LIST_LIMIT else "")
    return RunRequest(run_key=commit.id, tags=tags)


def evaluate(
    context: SensorEvaluationContext, watch: Watch, environments: Mapping[str, Any] | None = None, job_name: str = "migrate"
) -> SensorResult | SkipReason:
    """One tick: decide, then start a run (with environments: the commit's rollout) or skip; AWS and git errors
    become a SkipReason, never a crash."""
    if not watch.repository:
        return SkipReason(f"{watch.setting} is not set; set it to the repository to watch and restart the code location")
    try:
        repo = watch.source()
        decision = decide(repo, watch.branch, context.cursor, MAX_WALK[watch.kind])
        for note in decision.notes:
            context.log.info(note)
        if decision.commit is None:
            return SensorResult(skip_reason=SkipReason(decision.reason), cursor=decision.head)
        names = repo.script_names(decision.commit.id)
        new_scripts, sentence = compare_with_definitions(context, names, decision.changed)
    except DbopsError as exc:
        problem = redact(str(exc))
        return SkipReason(problem if watch.label in problem else f"{watch.label} ({watch.branch}): {problem}")
    folded = f"; folds in {len(decision.included)} earlier commit(s): {', '.join(c.id[:12] for c in decision.included)}" if decision.included else ""
    request = run_request(repo, watch.branch, decision, new_scripts)
    assets = sensor_assets(context)
    if environments:
        rollout = Rollout(decision.commit.id, dict(environments), dict(request.tags))
        try:
            step, requests = rollout_requests(context.instance, rollout, job_name, parallel_limit(), assets)
        except DbopsError as exc:
            return SkipReason(redact(str(exc)))
        context.log.info(f"commit {decision.commit.id[:12]} ({_first_line(decision.commit.message)}) starts a rollout{folded}; {sentence}; {describe(rollout, step)}")
        return SensorResult(run_requests=requests, cursor=decision.head)
    if assets is not None:  # what the instance has not recorded; the run applies whatever is pending
        request = pending_request(request.run_key, request.tags, assets, expected_pending(context.instance, assets.keys, [None])[None])
    context.log.info(f"commit {decision.commit.id[:12]} ({_first_line(decision.commit.message)}) starts a migrate run{folded}; {sentence}")
    return SensorResult(run_requests=[request], cursor=decision.head)


def make_sensor(job: Any, watch: Watch, name: str, interval: int, environments: Mapping[str, Any] | None = None) -> SensorDefinition:
    """A sensor for one watched branch; RUNNING by default when its repository is configured. With environments,
    each commit starts a rollout (its first wave) instead of one run; rollout_sensor carries it on."""
    what = "a git repository (path or URL)" if watch.kind == "git" else "an AWS CodeCommit repository"
    status = DefaultSensorStatus.RUNNING if watch.repository else DefaultSensorStatus.STOPPED

    @sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval,
        default_status=status,
        description=(
            f"Starts {'a rollout over the environments' if environments else 'one `migrate` run'} for each new commit of branch {watch.branch} of {what} "
            f"({redact(watch.repository) or f'unset: set {watch.setting}'}) that changes a script under "
            f"{', '.join(watch.locations)}; run_key = commit id, cursor = last commit handled."
        ),
    )
    def _watch(context: SensorEvaluationContext):
        return evaluate(context, watch, environments, job.name)

    return _watch


def build_sensors(
    job: Any, git: Watch | None = None, codecommit: Watch | None = None, environments: Mapping[str, Any] | None = None
) -> list[SensorDefinition]:
    """codecommit_sensor and git_sensor targeting the migrate job, configured from the environment by default."""
    return [
        make_sensor(job, codecommit or Watch.from_env("codecommit"), "codecommit_sensor", 60, environments),
        make_sensor(job, git or Watch.from_env("git"), "git_sensor", 30, environments),
    ]
