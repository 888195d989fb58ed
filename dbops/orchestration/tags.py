"""The dbops/* run tags: where a run's scripts come from and who changed them (set by sensors and the CLI)."""
from __future__ import annotations

import os

from dbops.errors import ConfigError
from dbops.scripts.codecommit import CodeCommitSource
from dbops.scripts.git import GitSource
from dbops.scripts.sources import CommitInfo, FolderSource, Source

TAG_SOURCE = "dbops/source"
TAG_COMMIT = "dbops/commit"
TAG_AUTHOR = "dbops/author"
TAG_MESSAGE = "dbops/message"
TAG_REPOSITORY = "dbops/repository"
TAG_TARGET = "dbops/target"
TAG_ENVIRONMENT = "dbops/environment"  # the flyway.toml environment a run migrates
TAG_INCLUDED = "dbops/included_commits"  # earlier commits a run applies too (comma-separated ids)
TAG_INCLUDED_BEFORE = "dbops/skipped_commits"  # its name until 2026-12: runs started then still read
TAG_ROLLOUT = "dbops/rollout"  # the rollout a run belongs to (its commit id, or a digest of its scripts)
TAG_WAVE = "dbops/wave"


def source_for_tags(tags: dict[str, str], locations: list[str]) -> Source:
    """The source a run should read: `dbops/repository` + `dbops/commit` when set, else the folders.

    `git:<path-or-url>` reads that commit with git, `codecommit:<name>` from AWS CodeCommit (region
    from AWS_REGION); `dbops/included_commits` (comma-separated ids) lists earlier commits the run
    applies too, so each script is attributed to the commit that brought it.
    """
    repository = tags.get(TAG_REPOSITORY, "")
    if not repository:
        return FolderSource(locations)
    kind, _, where = repository.partition(":")
    commit = tags.get(TAG_COMMIT, "").strip()
    included = tuple(c for c in (part.strip() for part in (tags.get(TAG_INCLUDED) or tags.get(TAG_INCLUDED_BEFORE, "")).split(",")) if c)
    if kind not in ("git", "codecommit"):
        raise ConfigError(f"run tag {TAG_REPOSITORY}={repository!r}: unknown repository kind {kind!r} (expected git:… or codecommit:…)")
    if not where or not commit:
        raise ConfigError(
            f"run tags {TAG_REPOSITORY}={repository!r} and {TAG_COMMIT}={commit!r}: a repository run needs both "
            "the repository and the commit id; start it from the sensor or set both tags"
        )
    if kind == "git":
        return GitSource(where, commit, tuple(locations), included=included)
    return CodeCommitSource(where, commit, locations=tuple(locations), included=included, region=os.environ.get("AWS_REGION") or None)


def commit_from_tags(tags: dict[str, str]) -> CommitInfo | None:
    """The commit a run records in the audit table, from its tags."""
    if not tags.get(TAG_COMMIT):
        return None
    return CommitInfo(id=tags[TAG_COMMIT], author=tags.get(TAG_AUTHOR, ""), message=tags.get(TAG_MESSAGE, ""))
