"""Where scripts come from: a folder, a git commit or a CodeCommit commit."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dbops.errors import ConfigError, ScriptError

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
    """The scripts of one exact state of a source, plus the commit it came from (if any)."""

    files: list[ScriptFile]
    commit: CommitInfo | None = None
    notes: list[str] = field(default_factory=list)


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
            try:
                data = full.read_bytes()
            except OSError as exc:
                raise ScriptError(f"{location.rstrip('/')}/{rel}", f"cannot read: {exc.strerror or exc}; fix its permissions or remove it") from None
            files.append(ScriptFile(relpath=rel, data=data, location=location))
    return files


def _walk_error(exc: OSError) -> None:
    raise ConfigError(f"{exc.filename}: cannot list folder: {exc.strerror}; fix its permissions") from None


# Run tags that say where a run's scripts come from (set by sensors and the CLI, read by the migrate job).
TAG_SOURCE = "dbops/source"
TAG_COMMIT = "dbops/commit"
TAG_AUTHOR = "dbops/author"
TAG_MESSAGE = "dbops/message"
TAG_REPOSITORY = "dbops/repository"
TAG_TARGET = "dbops/target"


def source_for_tags(tags: dict[str, str], locations: list[str]) -> Source:
    """The source a run should read: `dbops/repository` + `dbops/commit` when set, else the folders."""
    repository = tags.get(TAG_REPOSITORY, "")
    if not repository:
        return FolderSource(locations)
    kind, _, where = repository.partition(":")
    raise ConfigError(f"run tag {TAG_REPOSITORY}={repository!r}: unknown repository kind {kind!r} (expected git:… or codecommit:…)")


def commit_from_tags(tags: dict[str, str]) -> CommitInfo | None:
    """The commit a run records in the audit table, from its tags."""
    if not tags.get(TAG_COMMIT):
        return None
    return CommitInfo(id=tags[TAG_COMMIT], author=tags.get(TAG_AUTHOR, ""), message=tags.get(TAG_MESSAGE, ""))
