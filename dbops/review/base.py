"""The base a branch is reviewed against: the scripts of a git ref, and of the commit the branch forked from it."""
from __future__ import annotations

import os
from dataclasses import dataclass

from dbops.errors import ConfigError
from dbops.scripts.git import GitSource
from dbops.scripts.sources import ScriptFile, SourceError


@dataclass(frozen=True)
class Base:
    """The scripts at `ref` (commit `commit`), and at `fork`, where the reviewed work tree's HEAD left it.

    What the branch changed is the difference between `fork_files` and the work tree; what it must not collide
    with is `files`. Without a common ancestor `fork` is `commit`: everything that differs counts as the branch's.
    """

    ref: str
    commit: str
    fork: str
    files: list[ScriptFile]
    fork_files: list[ScriptFile]
    has_ancestor: bool = True  # False: HEAD and the base have no common ancestor here (unrelated, or a shallow clone)

    @property
    def label(self) -> str:
        return f"{self.ref} ({self.commit[:12]})"


def read_base(ref: str, locations: list[str], repo: str = ".") -> Base:
    """The base `ref` of the git repository holding `repo`, read with git (no checkout); the locations are folders of
    the work tree. An unknown ref or a folder outside the repository raises (exit 2)."""
    absolute = tuple(os.path.abspath(location) for location in locations)
    source = GitSource(repo=repo, ref=ref, locations=absolute)
    try:
        source.git_dir
    except SourceError:
        raise ConfigError(f"--base {ref}: {os.path.abspath(repo)} is not in a git repository; run dbops review in a "
                          "checkout, or review against the target's history only (--url without --base)") from None
    try:
        commit = source.resolve(ref)
    except SourceError:
        raise ConfigError(f"--base {ref}: no branch, tag or commit of that name in {source.git_dir}; give a branch "
                          "(e.g. main, origin/main), a tag or a commit id") from None
    try:
        fork, has_ancestor = source.run("merge-base", "HEAD", commit).strip(), True
    except SourceError:  # no HEAD yet, or histories without a common ancestor
        fork, has_ancestor = commit, False
    files = _files_at(source, commit, locations)
    fork_files = files if fork == commit else _files_at(source, fork, locations)
    return Base(ref=ref, commit=commit, fork=fork, files=files, fork_files=fork_files, has_ancestor=has_ancestor)


def _files_at(source: GitSource, commit: str, locations: list[str]) -> list[ScriptFile]:
    """The script files of each location at `commit`, shown under the location as the user gave it; a location that
    the commit does not have yet holds no scripts."""
    files: list[ScriptFile] = []
    for shown, inside, absolute in zip(locations, source.repo_locations, source.locations):
        # --full-tree: the path is the repository's, not relative to the folder git runs in (a subfolder of the work tree)
        if inside and not source.run("ls-tree", "-d", "--full-tree", commit, "--", inside).strip():
            continue
        at = GitSource(repo=source.repo, ref=commit, locations=(absolute,))
        files += [ScriptFile(f.relpath, f.data, shown) for f in at.snapshot().files]
    return files
