"""Where scripts come from: a folder, a git commit or a CodeCommit commit."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dbops.errors import ConfigError, DbopsError, ScriptError

SCRIPT_SUFFIXES = (".sql", ".sql.conf")


@dataclass(frozen=True)
class ScriptFile:
    """A file under a migrations location: path relative to the location, and its bytes."""

    relpath: str
    data: bytes
    location: str = ""

    @property
    def display_path(self) -> str:
        """The path a user recognises: location/relpath."""
        return f"{self.location.rstrip('/')}/{self.relpath}" if self.location else self.relpath


@dataclass(frozen=True)
class CommitInfo:
    """The commit a set of scripts came from."""

    id: str
    author: str = ""
    message: str = ""
    time: str = ""


@dataclass
class Snapshot:
    """The scripts of one exact state of a source, plus the commit it came from (if any).

    `file_commits` maps a file's display path to the commit that brought it, when a run folds
    several commits together; files not listed came with `commit`.
    """

    files: list[ScriptFile]
    commit: CommitInfo | None = None
    notes: list[str] = field(default_factory=list)
    file_commits: dict[str, CommitInfo] = field(default_factory=dict)

    def commit_for(self, display_path: str) -> CommitInfo | None:
        """The commit that brought this file: its own entry, else the snapshot's commit."""
        return self.file_commits.get(display_path) or self.commit


@dataclass(frozen=True)
class CommitChange:
    """One commit of a branch and the script files it added, changed or deleted (paths inside the repository)."""

    commit: CommitInfo
    paths: tuple[str, ...] = ()


class SourceError(DbopsError):
    """A repository cannot be read: unknown repository, branch or commit, no access, throttled."""

    exit_code = 2

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class Source(Protocol):
    """Anything that can produce a snapshot of scripts."""

    def snapshot(self) -> Snapshot: ...


def is_script_name(name: str) -> bool:
    """True for the files a location holds for dbops: *.sql and *.sql.conf (any case)."""
    return name.lower().endswith(SCRIPT_SUFFIXES)


@dataclass
class FolderSource:
    """Scripts read from one or more folders, scanned recursively (symlinks followed once)."""

    locations: list[str]

    def snapshot(self) -> Snapshot:
        files: list[ScriptFile] = []
        for location in self.locations:
            files.extend(read_folder(location))
        return Snapshot(files=files)


def read_folder(location: str) -> list[ScriptFile]:
    """Every script file under `location`, with paths relative to it."""
    root = Path(location)
    if not root.is_dir():
        raise ConfigError(
            f"{location}: migrations location not found or not a folder; "
            "pass --locations DIR or set DBOPS_LOCATIONS"
        )
    files: list[ScriptFile] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_walk_error):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            if not is_script_name(name):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            files.append(ScriptFile(relpath=rel, data=_read_script(full, f"{location.rstrip('/')}/{rel}"), location=location))
    return files


def _read_script(full: Path, shown: str) -> bytes:
    """A script's bytes; a name that is not UTF-8, or a pipe or device named *.sql, is refused (exit 2) before reading."""
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:
        printable = shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ScriptError(printable, "the file name is not valid UTF-8; rename it") from None
    try:
        if not stat.S_ISREG(full.stat().st_mode):
            raise ScriptError(shown, "not a regular file (a pipe, socket or device); replace it with the script or remove it")
        return full.read_bytes()
    except OSError as exc:
        raise ScriptError(shown, f"cannot read: {exc.strerror or exc}; fix its permissions or remove it") from None


def _walk_error(exc: OSError) -> None:
    raise ConfigError(f"{exc.filename}: cannot list folder: {exc.strerror}; fix its permissions") from None


# Run tags that say where a run's scripts come from (set by sensors and the CLI, read by the migrate job).
TAG_SOURCE = "dbops/source"
TAG_COMMIT = "dbops/commit"
TAG_AUTHOR = "dbops/author"
TAG_MESSAGE = "dbops/message"
TAG_REPOSITORY = "dbops/repository"
TAG_TARGET = "dbops/target"
TAG_SKIPPED = "dbops/skipped_commits"


def source_for_tags(tags: dict[str, str], locations: list[str]) -> Source:
    """The source a run should read: `dbops/repository` + `dbops/commit` when set, else the folders.

    `git:<path-or-url>` reads that commit with git, `codecommit:<name>` from AWS CodeCommit (region
    from AWS_REGION); `dbops/skipped_commits` (comma-separated ids) lists earlier commits the run
    folds in, so each script is attributed to the commit that brought it.
    """
    repository = tags.get(TAG_REPOSITORY, "")
    if not repository:
        return FolderSource(locations)
    kind, _, where = repository.partition(":")
    commit = tags.get(TAG_COMMIT, "").strip()
    batch = tuple(c for c in (part.strip() for part in tags.get(TAG_SKIPPED, "").split(",")) if c)
    if kind not in ("git", "codecommit"):
        raise ConfigError(f"run tag {TAG_REPOSITORY}={repository!r}: unknown repository kind {kind!r} (expected git:… or codecommit:…)")
    if not where or not commit:
        raise ConfigError(
            f"run tags {TAG_REPOSITORY}={repository!r} and {TAG_COMMIT}={commit!r}: a repository run needs both "
            "the repository and the commit id; start it from the sensor or set both tags"
        )
    if kind == "git":
        from dbops.git_source import GitSource

        return GitSource(where, commit, tuple(locations), batch=batch)
    from dbops.codecommit_source import CodeCommitSource

    return CodeCommitSource(where, commit, locations=tuple(locations), batch=batch, region=os.environ.get("AWS_REGION") or None)


def commit_from_tags(tags: dict[str, str]) -> CommitInfo | None:
    """The commit a run records in the audit table, from its tags."""
    if not tags.get(TAG_COMMIT):
        return None
    return CommitInfo(id=tags[TAG_COMMIT], author=tags.get(TAG_AUTHOR, ""), message=tags.get(TAG_MESSAGE, ""))


def repo_location(location: str) -> str:
    """A migrations location as a path inside a repository: `sql`, `db/sql`, or "" for the root."""
    path = location.strip().removeprefix("filesystem:").replace("\\", "/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts:
        raise ConfigError(
            f"{location}: a location inside a repository must be a relative path such as sql or db/migrations"
        )
    return "/".join(parts)


def in_location(path: str, location: str) -> str | None:
    """`path` relative to `location` when it is a script file under it, else None."""
    if location and not path.startswith(location + "/"):
        return None
    rel = path[len(location) + 1 :] if location else path
    return rel if is_script_name(rel.rsplit("/", 1)[-1]) else None


def attribute(
    files: list[ScriptFile], locations: dict[str, str], changes: list[tuple[CommitInfo, list[str]]]
) -> dict[str, CommitInfo]:
    """Display path → the commit that last changed the file, from `changes` (oldest first, repository paths).

    `locations` maps each location as given (the files' `location`) to its path inside the repository.
    """
    last: dict[str, CommitInfo] = {}
    for commit, paths in changes:
        for path in paths:
            last[path] = commit
    result: dict[str, CommitInfo] = {}
    for file in files:
        inside = locations.get(file.location)
        if inside is None:
            continue
        commit = last.get(f"{inside}/{file.relpath}" if inside else file.relpath)
        if commit is not None:
            result[file.display_path] = commit
    return result


def __getattr__(name: str):
    # GitSource and CodeCommitSource live in their own modules, loaded on first use.
    if name == "GitSource":
        from dbops.git_source import GitSource

        return GitSource
    if name == "CodeCommitSource":
        from dbops.codecommit_source import CodeCommitSource

        return CodeCommitSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
