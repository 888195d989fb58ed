"""Scripts of one git commit, read with the git CLI (ls-tree, cat-file): no checkout, no working tree."""
from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dbops.errors import ConfigError
from dbops.paths import dbops_home
from dbops.scripts.sources import CommitChange, CommitInfo, Repository, SourceError, in_location, repo_location
from dbops.urls import redact

FETCH_TIMEOUT = 300.0
_CLEAN_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")
_META_FORMAT = "%H%x00%an%x00%ae%x00%aI%x00%B%x1e"


def is_remote(repo: str) -> bool:
    """True for a URL (`https://…`, `ssh://…`, `file://…`, `user@host:path`), false for a local path."""
    if "://" in repo:
        return True
    head, sep, _ = repo.partition(":")
    return bool(sep) and "@" in head and "/" not in head


def mirror_dir(url: str, home: Path | None = None) -> Path:
    """Where the bare mirror of a remote repository lives: DBOPS_HOME/git/<hash>.git."""
    if home is None:
        home = dbops_home()
    digest = hashlib.sha256(redact(url).encode()).hexdigest()[:16]
    return home / "git" / f"{digest}.git"


@dataclass
class GitSource(Repository):
    """The scripts of `ref` (branch, tag or commit id) in a local repository or a mirrored remote one.

    `included` lists earlier commits a run for `ref` applies too: files they changed are attributed to
    them in the snapshot (the audit table then names the commit that brought each script).
    """

    repo: str
    ref: str = "HEAD"
    locations: tuple[str, ...] = ("sql",)
    included: tuple[str, ...] = ()
    home: Path | None = None
    _fetched: bool = field(default=False, repr=False)

    @property
    def label(self) -> str:
        """The run tag value naming this repository: `git:<absolute path or redacted URL>`."""
        return f"git:{redact(self.repo) if is_remote(self.repo) else self.git_dir}"

    @cached_property
    def git_dir(self) -> str:
        """The repository git reads: the local path, or the mirror of a remote (cloned on first use)."""
        if not is_remote(self.repo):
            path = Path(self.repo).expanduser().resolve()
            if not path.exists():
                raise SourceError(f"{self.repo}: git repository not found; set DBOPS_GIT_REPOSITORY to a repository path or URL")
            try:
                _git(["-C", str(path), "rev-parse", "--git-dir"], cwd=None)
            except SourceError:
                raise SourceError(f"{self.repo}: not a git repository; set DBOPS_GIT_REPOSITORY to a repository path or URL") from None
            return str(path)
        mirror = mirror_dir(self.repo, self.home)
        if not (mirror / "HEAD").exists():
            if "***" in self.repo:
                raise SourceError(
                    f"{self.repo}: no mirror of this repository on this machine, and the URL is redacted so it cannot be "
                    "cloned here; run the sensor here once, or use a credential helper and a URL without a password"
                )
            mirror.parent.mkdir(parents=True, exist_ok=True)
            _git(["clone", "--mirror", "--quiet", "--", self.repo, str(mirror)], cwd=None, what=f"clone {redact(self.repo)}", timeout=FETCH_TIMEOUT)
            self._fetched = True
        return str(mirror)

    @cached_property
    def repo_locations(self) -> tuple[str, ...]:
        """The locations as paths inside the repository (absolute ones made relative to a local work tree)."""
        result = []
        for location in self.locations:
            raw = location.strip().removeprefix("filesystem:")
            if os.path.isabs(raw) and not is_remote(self.repo):
                try:
                    top = Path(self.run("rev-parse", "--show-toplevel").strip())
                except SourceError:
                    raise ConfigError(f"{location}: an absolute location needs a repository with a work tree; use a path relative to the repository root") from None
                try:
                    raw = Path(raw).resolve().relative_to(top.resolve()).as_posix()
                except ValueError:
                    raise ConfigError(f"{location}: not inside the git repository {top}; use a path relative to the repository root") from None
            result.append(repo_location(raw))
        return tuple(result)

    def run(self, *args: str, input: bytes | None = None) -> str:
        """Run a git command on this repository; a failure raises SourceError with git's message."""
        return _git(["--git-dir" if is_remote(self.repo) else "-C", self.git_dir, *args], cwd=None, input=input).decode(
            "utf-8", "surrogateescape"
        )

    def describe(self) -> str:
        """One line naming the repository: its path, or the URL and the mirror that holds it."""
        if is_remote(self.repo):
            return f"git repository {redact(self.repo)} (mirror {self.git_dir})"
        return f"git repository {self.git_dir}"

    def refresh(self) -> None:
        """Fetch a mirrored remote (each sensor tick); a local repository is read as it is."""
        if is_remote(self.repo) and not self._fetched:
            _git(["--git-dir", self.git_dir, "fetch", "--prune", "--quiet", "origin"], cwd=None, what=f"fetch {redact(self.repo)}", timeout=FETCH_TIMEOUT)
            self._fetched = True

    def resolve(self, ref: str) -> str:
        """The commit id of a branch, tag or commit; an unknown one raises SourceError naming it."""
        self.git_dir  # a missing repository or a failed clone is reported as such, not as an unknown ref
        try:
            return self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}").strip()
        except SourceError:
            raise SourceError(f"{self.label}: no branch, tag or commit {ref!r}; check DBOPS_GIT_BRANCH and the repository") from None

    def commit_infos(self, commits: list[str]) -> dict[str, CommitInfo]:
        """Id, author, message and author time of each commit."""
        if not commits:
            return {}
        out = self.run("log", "--no-walk=unsorted", f"--format={_META_FORMAT}", *commits, "--")
        infos: dict[str, CommitInfo] = {}
        for record in out.split("\x1e"):
            fields = record.lstrip("\n").split("\x00")
            if len(fields) == 5:
                commit, name, email, when, message = fields
                author = f"{name} <{email}>" if email else name
                infos[commit] = CommitInfo(id=commit, author=author, message=message.strip(), time=when)
        return infos

    def commit_info(self, commit: str) -> CommitInfo:
        full = self.resolve(commit)
        return self.commit_infos([full])[full]

    def changes(self, since: str | None, head: str | None = None, limit: int = 200) -> list[CommitChange]:
        """Commits of the branch's first-parent line after `since` (newest first, at most `limit`), with the
        script files each changed in the locations (a merge is compared with its first parent)."""
        head = head or self.head()
        revs = [head, f"^{since}"] if since else [head]
        out = self.run(
            "log", "--first-parent", "--diff-merges=first-parent", "-z", "--name-only", f"--max-count={limit}",
            "--format=%x01%H%x02", *revs, "--",
        )
        entries: list[tuple[str, tuple[str, ...]]] = []
        for chunk in out.split("\x01")[1:]:
            commit, _, names = chunk.partition("\x02")
            paths = [p.lstrip("\n") for p in names.split("\x00")]
            entries.append((commit, tuple(p for p in paths if p and self.is_script_path(p))))
        infos = self.commit_infos([c for c, _ in entries])
        return [CommitChange(infos[c], paths) for c, paths in entries]

    def locate(self, ref: str) -> str:
        """Resolve `ref`, fetching a mirror once when the commit is not there yet."""
        try:
            return self.resolve(ref)
        except SourceError:
            if not is_remote(self.repo) or self._fetched:
                raise
            self.refresh()
            return self.resolve(ref)

    def files_in(self, commit: str, location: str, user_location: str, notes: list[str]) -> list[tuple[str, str]]:
        args = ["ls-tree", "-r", "-z", "--full-tree", commit]
        out = self.run(*args, "--", location) if location else self.run(*args)
        entries: list[tuple[str, str]] = []
        found = False
        for record in out.split("\x00"):
            if not record:
                continue
            meta, _, path = record.partition("\t")
            mode, kind, oid = meta.split(" ")
            if kind != "blob":
                continue
            found = True
            if mode == "120000":
                if in_location(path, location) is not None:
                    notes.append(f"{path}: symbolic link in commit {commit[:12]} skipped; commit the file itself")
                continue
            entries.append((path, oid))
        if location and not found and not self._is_tree(commit, location):
            raise self.location_not_found(user_location, commit)
        return entries

    def _is_tree(self, commit: str, location: str) -> bool:
        try:
            return self.run("cat-file", "-t", f"{commit}:{location}").strip() == "tree"
        except SourceError:
            return False

    def read_blobs(self, commit: str, entries: list[tuple[str, str]]) -> dict[str, bytes]:
        """Contents of blobs, read in one `git cat-file --batch` call."""
        if not entries:
            return {}
        unique = list(dict.fromkeys(oid for _, oid in entries))
        where = ["--git-dir" if is_remote(self.repo) else "-C", self.git_dir]
        out = _git([*where, "cat-file", "--batch"], cwd=None, input=("\n".join(unique) + "\n").encode())
        blobs: dict[str, bytes] = {}
        pos = 0
        for oid in unique:
            header_end = out.index(b"\n", pos)
            _, kind, size = out[pos:header_end].decode().split(" ")
            start = header_end + 1
            blobs[oid] = out[start : start + int(size)]
            pos = start + int(size) + 1
        return blobs

    def included_changes(self, commit: str) -> list[tuple[CommitInfo, list[str]]]:
        if not self.included:
            return []
        order = [self.resolve(c) for c in self.included] + [commit]
        out = self.run("log", "--no-walk=unsorted", "--diff-merges=first-parent", "-z", "--name-only", "--format=%x01%H%x02", *order, "--")
        changed: dict[str, list[str]] = {}
        for chunk in out.split("\x01")[1:]:
            sha, _, names = chunk.partition("\x02")
            changed[sha] = [p.lstrip("\n") for p in names.split("\x00") if p.strip("\n")]
        infos = self.commit_infos(order)
        return [(infos[sha], changed.get(sha, [])) for sha in order]


def _git(args: list[str], cwd: str | None, input: bytes | None = None, what: str = "", timeout: float = 60.0) -> bytes:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(
            # diff.relative=false: a user's setting must not make log/diff paths relative to the folder git runs in
            ["git", "-c", "core.quotepath=off", "-c", "diff.relative=false", *args], cwd=cwd, input=input, capture_output=True, env=env, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise SourceError("git is not installed; install git (the sensor and git runs use the git command)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"git {what or args[-1]}: no answer after {timeout:.0f}s") from None
    if done.returncode != 0:
        message = redact(done.stderr.decode("utf-8", "replace").strip()) or f"exit status {done.returncode}"
        raise SourceError(f"git {what or ' '.join(args[2:4])}: {message}")
    return done.stdout
