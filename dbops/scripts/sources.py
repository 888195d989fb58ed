"""Where scripts come from: a folder, a git commit or a CodeCommit commit."""
from __future__ import annotations

import codecs
import os
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dbops.errors import ConfigError, DbopsError, ScriptError

SCRIPT_SUFFIXES = (".sql", ".sql.conf", ".sql.check")  # a script, its settings, its checks


# Encodings whose decoded text encodes back to exactly the bytes it came from: a file read in one of them keeps
# its text alone once decoded.
_ROUND_TRIP = frozenset({"utf-8", "ascii", "iso8859-1"})  # codecs.lookup names


class ScriptFile:
    """A file under a migrations location: path relative to the location, and its bytes.

    `text()` decodes once; every catalog read from the same snapshot (the command line's, the Dagster definitions',
    the run's) then shares that text. Decoded in an encoding that round-trips, the file keeps only the text and
    `data` encodes it again when asked, so a 50 MB script is held once, not as bytes plus text.
    """

    __slots__ = ("relpath", "location", "_data", "_text")

    def __init__(self, relpath: str, data: bytes, location: str = "") -> None:
        self.relpath = relpath
        self.location = location
        self._data: bytes | None = data
        self._text: tuple[str, str] | None = None  # (encoding, text)

    @property
    def data(self) -> bytes:
        if self._data is not None:
            return self._data
        encoding, text = self._text  # type: ignore[misc]
        return text.encode(encoding)

    def text(self, encoding: str = "utf-8") -> str:
        """The file decoded with `encoding` (UnicodeDecodeError when it is not that encoding), decoded once."""
        if self._text is not None and self._text[0] == encoding:
            return self._text[1]
        text = self.data.decode(encoding)
        self._text = (encoding, text)
        if codecs.lookup(encoding).name in _ROUND_TRIP:
            self._data = None
        return text

    @property
    def display_path(self) -> str:
        """The path a user recognises: location/relpath."""
        return f"{self.location.rstrip('/')}/{self.relpath}" if self.location else self.relpath

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ScriptFile):
            return NotImplemented
        return (self.relpath, self.location, self.data) == (other.relpath, other.location, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        size = len(self._data) if self._data is not None else len(self._text[1])  # type: ignore[index]
        return f"ScriptFile({self.relpath!r}, <{size} chars>, {self.location!r})"


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


def is_hidden(folder: str) -> bool:
    """Flyway's scanner skips hidden folders (a name starting with `.`), and so does dbops, in every source."""
    return folder.startswith(".")


def is_script_name(name: str) -> bool:
    """True for the files a location holds for dbops: *.sql, *.sql.conf and *.sql.check (any case)."""
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
    top = str(root)
    shown_root = location.rstrip("/")
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True, onerror=_walk_error):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in sorted(filenames):
            if not is_script_name(name):
                continue
            folder = dirpath[len(top) :].strip(os.sep).replace(os.sep, "/")  # plain strings: pathlib costs more than reading
            rel = f"{folder}/{name}" if folder else name
            files.append(ScriptFile(relpath=rel, data=_read_script(os.path.join(dirpath, name), f"{shown_root}/{rel}"), location=location))
    return files


def _read_script(full: str, shown: str) -> bytes:
    """A script's bytes; a name that is not UTF-8, or a pipe or device named *.sql, is refused (exit 2) before reading."""
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:
        printable = shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ScriptError(printable, "the file name is not valid UTF-8; rename it") from None
    try:
        path = Path(full)
        if not stat.S_ISREG(path.stat().st_mode):
            raise ScriptError(shown, "not a regular file (a pipe, socket or device); replace it with the script or remove it")
        return path.read_bytes()
    except OSError as exc:
        raise ScriptError(shown, f"cannot read: {exc.strerror or exc}; fix its permissions or remove it") from None


def _walk_error(exc: OSError) -> None:
    raise ConfigError(f"{exc.filename}: cannot list folder: {exc.strerror}; fix its permissions") from None


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
    *folders, name = rel.split("/")
    return rel if is_script_name(name) and not any(is_hidden(f) for f in folders) else None


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


class Repository(ABC):
    """A repository that sensors watch and runs read (git, CodeCommit): a branch's commits, the scripts at each.

    Subclasses have `ref` (branch, tag or commit), `locations` (as the user gave them) and `included` (earlier
    commits a run applies too, whose files are attributed to them), and say how to list and read files.
    """

    ref: str
    locations: tuple[str, ...]
    included: tuple[str, ...]

    @property
    @abstractmethod
    def label(self) -> str:
        """The run tag value naming this repository (`git:…`, `codecommit:…`)."""

    @property
    @abstractmethod
    def repo_locations(self) -> tuple[str, ...]:
        """The locations as paths inside the repository."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the repository, for the sensor's first tick."""

    @abstractmethod
    def refresh(self) -> None:
        """Bring the local view up to date (each sensor tick)."""

    @abstractmethod
    def resolve(self, ref: str) -> str:
        """The commit id of a branch, tag or commit; an unknown one raises SourceError naming it."""

    @abstractmethod
    def commit_info(self, commit: str) -> CommitInfo:
        """Id, author, message and time of a commit."""

    @abstractmethod
    def changes(self, since: str | None, head: str | None = None, limit: int = 100) -> list[CommitChange]:
        """Commits of the branch's first-parent line after `since` (newest first, at most `limit`), with the
        script files each changed in the locations (a merge is compared with its first parent)."""

    @abstractmethod
    def files_in(self, commit: str, location: str, user_location: str, notes: list[str]) -> list[tuple[str, str]]:
        """(repository path, blob id) of each file under `location` at `commit`; skipped links go to `notes`.

        A location that is not in the commit raises `location_not_found`."""

    @abstractmethod
    def read_blobs(self, commit: str, entries: list[tuple[str, str]]) -> dict[str, bytes]:
        """Blob id → contents, for (path, blob id) entries of `commit`."""

    @abstractmethod
    def included_changes(self, commit: str) -> list[tuple[CommitInfo, list[str]]]:
        """The included commits and `commit`, oldest first, each with the repository paths it changed."""

    def locate(self, ref: str) -> str:
        """The commit id to read for `ref` (a mirror may fetch first)."""
        return self.resolve(ref)

    def head(self) -> str:
        """The commit id `ref` points at."""
        return self.resolve(self.ref)

    def has_commit(self, commit: str) -> bool:
        try:
            self.resolve(commit)
        except SourceError:
            return False
        return True

    def is_script_path(self, path: str) -> bool:
        """True when a repository path is a script file in one of the locations."""
        return any(in_location(path, loc) is not None for loc in self.repo_locations)

    def location_not_found(self, user_location: str, commit: str) -> ConfigError:
        return ConfigError(
            f"{user_location}: migrations location not found in commit {commit[:12]} of {self.label}; "
            "check DBOPS_LOCATIONS (a path inside the repository)"
        )

    def snapshot(self) -> Snapshot:
        """Every script file of the locations at `ref`, each attributed to the commit that brought it."""
        commit = self.locate(self.ref)
        files: list[ScriptFile] = []
        notes: list[str] = []
        for location, user_location in zip(self.repo_locations, self.locations):
            entries = [(rel, path, blob) for path, blob in self.files_in(commit, location, user_location, notes)
                       if (rel := in_location(path, location)) is not None]
            blobs = self.read_blobs(commit, [(path, blob) for _, path, blob in entries])
            files.extend(ScriptFile(relpath=rel, data=blobs[blob], location=user_location) for rel, _, blob in entries)
        brought = attribute(files, dict(zip(self.locations, self.repo_locations)), self.included_changes(commit))
        return Snapshot(files=files, commit=self.commit_info(commit), notes=notes, file_commits=brought)

    def script_names(self, commit: str) -> list[str]:
        """Paths (relative to their location) of the script files at `commit`, without reading them."""
        commit = self.locate(commit)
        notes: list[str] = []
        return [
            rel
            for location, user_location in zip(self.repo_locations, self.locations)
            for path, _ in self.files_in(commit, location, user_location, notes)
            if (rel := in_location(path, location)) is not None
        ]
