"""Scripts of one AWS CodeCommit commit, read through the API (boto3); results cached per commit id."""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dbops.scripts.sources import CommitChange, CommitInfo, Repository, SourceError, repo_location

_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_PERMISSIONS = "codecommit:GetBranch, GetCommit, GetDifferences, GetFolder and GetFile"
_MESSAGES = {
    "RepositoryDoesNotExistException": "no such repository in region {region}; check DBOPS_CODECOMMIT_REPOSITORY and AWS_REGION",
    "BranchDoesNotExistException": "no such branch; check DBOPS_CODECOMMIT_BRANCH",
    "CommitDoesNotExistException": "no such commit",
    "CommitIdDoesNotExistException": "no such commit",
    "AccessDeniedException": "access denied ({detail}); the role needs " + _PERMISSIONS,
    "UnrecognizedClientException": "AWS rejected the credentials ({detail})",
    "ExpiredTokenException": "the AWS credentials have expired ({detail})",
    "ThrottlingException": "throttled by CodeCommit ({detail}); the sensor tries again on its next tick",
    "TooManyRequestsException": "throttled by CodeCommit ({detail}); the sensor tries again on its next tick",
    "EncryptionKeyAccessDeniedException": "cannot use the repository's KMS key ({detail})",
}


class _Cache:
    """A small thread-safe LRU map: commit ids and blob ids never change, so entries never go stale."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[tuple, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple, value: Any) -> Any:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


CACHE = _Cache(4096)


@dataclass
class CodeCommitSource(Repository):
    """The scripts of `ref` (branch or commit id) of a CodeCommit repository.

    `included` lists earlier commits a run for `ref` applies too: files they changed are attributed to
    them in the snapshot, as GitSource does.
    """

    repository: str
    ref: str = "main"
    client: Any = None
    locations: tuple[str, ...] = ("sql",)
    included: tuple[str, ...] = ()
    region: str | None = None

    @property
    def label(self) -> str:
        """The run tag value naming this repository: `codecommit:<name>`."""
        return f"codecommit:{self.repository}"

    @property
    def api(self) -> Any:
        if self.client is None:
            import boto3

            try:
                self.client = boto3.client("codecommit", region_name=self.region)
            except Exception as exc:  # botocore raises NoRegionError and friends here
                raise SourceError(f"{self.label}: cannot create a CodeCommit client: {exc}; set AWS_REGION") from None
        return self.client

    @property
    def repo_locations(self) -> tuple[str, ...]:
        return tuple(repo_location(loc) for loc in self.locations)

    def call(self, operation: str, what: str = "", **params: Any) -> dict[str, Any]:
        """One API call; AWS errors become SourceError with a message that says what to fix."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.api, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            template = _MESSAGES.get(code, f"{code}: {{detail}}")
            region = getattr(getattr(self.api, "meta", None), "region_name", None) or self.region or "?"
            problem = template.format(detail=error.get("Message", "") or code, region=region)
            raise SourceError(f"{self.label}{what}: {operation}: {problem}", code=code) from None
        except BotoCoreError as exc:
            raise SourceError(f"{self.label}{what}: {operation}: {exc}") from None

    def describe(self) -> str:
        """One line naming the repository as AWS knows it (get_repository): ARN and default branch."""
        meta = self.call("get_repository", repositoryName=self.repository)["repositoryMetadata"]
        default = meta.get("defaultBranch")
        return f"CodeCommit repository {meta.get('Arn', self.repository)}" + (f" (default branch {default})" if default else "")

    def refresh(self) -> None:
        """Nothing to fetch: every read goes to the API."""

    def resolve(self, ref: str) -> str:
        if _COMMIT_ID.fullmatch(ref):
            return self.commit_info(ref).id
        reply = self.call("get_branch", f" branch {ref}", repositoryName=self.repository, branchName=ref)
        return reply["branch"]["commitId"]

    def _commit(self, commit: str) -> dict[str, Any]:
        key = (self._region_key(), self.repository, "commit", commit)
        cached = CACHE.get(key)
        if cached is None:
            cached = CACHE.put(key, self.call("get_commit", f" commit {commit}", repositoryName=self.repository, commitId=commit)["commit"])
        return cached

    def commit_info(self, commit: str) -> CommitInfo:
        data = self._commit(commit)
        author = data.get("author", {})
        name, email = author.get("name", ""), author.get("email", "")
        return CommitInfo(
            id=data.get("commitId", commit),
            author=f"{name} <{email}>" if email else name,
            message=data.get("message", "").strip(),
            time=_iso_time(author.get("date", "")),
        )

    def changes(self, since: str | None, head: str | None = None, limit: int = 100) -> list[CommitChange]:
        """Commits of the branch's first-parent line after `since` (newest first, at most `limit`), with the
        script files each changed in the locations (a merge is compared with its first parent)."""
        commit: str | None = head or self.head()
        result: list[CommitChange] = []
        while commit and commit != since and len(result) < limit:
            parents = self._commit(commit).get("parents") or []
            parent = parents[0] if parents else None
            paths = tuple(p for p in self._changed(parent, commit) if self.is_script_path(p))
            result.append(CommitChange(self.commit_info(commit), paths))
            commit = parent
        return result

    def _changed(self, before: str | None, after: str) -> list[str]:
        """Every path a commit added, changed or deleted compared with `before` (None: the root commit)."""
        key = (self._region_key(), self.repository, "diff", before, after)
        cached = CACHE.get(key)
        if cached is not None:
            return cached
        params: dict[str, Any] = {"repositoryName": self.repository, "afterCommitSpecifier": after}
        if before:
            params["beforeCommitSpecifier"] = before
        paths: list[str] = []
        token = None
        while True:
            reply = self.call("get_differences", f" commit {after}", **params, **({"NextToken": token} if token else {}))
            for difference in reply.get("differences", []):
                for side in ("afterBlob", "beforeBlob"):
                    path = (difference.get(side) or {}).get("path")
                    path = (path or "").lstrip("/")
                    if path and path not in paths:
                        paths.append(path)
            token = reply.get("NextToken")
            if not token:
                return CACHE.put(key, paths)

    def files_in(self, commit: str, location: str, user_location: str, notes: list[str]) -> list[tuple[str, str]]:
        key = (self._region_key(), self.repository, "folder", commit, location)
        cached = CACHE.get(key)
        if cached is not None:
            notes.extend(cached[1])
            return cached[0]
        files: list[tuple[str, str]] = []
        links: list[str] = []
        pending = [location or "/"]
        while pending:
            folder = pending.pop(0)
            try:
                reply = self.call("get_folder", f" commit {commit}", repositoryName=self.repository, commitSpecifier=commit, folderPath=folder)
            except SourceError as exc:
                if exc.code == "FolderDoesNotExistException":
                    raise self.location_not_found(user_location, commit) from None
                raise
            files.extend((f["absolutePath"].lstrip("/"), f["blobId"]) for f in reply.get("files", []))
            pending.extend(sorted(sub["absolutePath"] for sub in reply.get("subFolders", [])))
            for link in reply.get("symbolicLinks", []):
                links.append(f"{link['absolutePath']}: symbolic link in commit {commit[:12]} skipped; commit the file itself")
        files.sort()
        notes.extend(links)
        return CACHE.put(key, (files, links))[0]

    def read_blobs(self, commit: str, entries: list[tuple[str, str]]) -> dict[str, bytes]:
        return {blob: self._file(commit, path, blob) for path, blob in entries}

    def _file(self, commit: str, path: str, blob: str) -> bytes:
        key = (self._region_key(), self.repository, "blob", blob)
        cached = CACHE.get(key)
        if cached is None:
            reply = self.call("get_file", f" file {path}", repositoryName=self.repository, commitSpecifier=commit, filePath=path)
            cached = CACHE.put(key, reply["fileContent"])
        return cached

    def included_changes(self, commit: str) -> list[tuple[CommitInfo, list[str]]]:
        if not self.included:
            return []
        changes = []
        for sha in [*self.included, commit]:
            parents = self._commit(sha).get("parents") or []
            changes.append((self.commit_info(sha), self._changed(parents[0] if parents else None, sha)))
        return changes

    def _region_key(self) -> str:
        return getattr(getattr(self.api, "meta", None), "region_name", None) or self.region or ""


def _iso_time(raw: str) -> str:
    """CodeCommit's `"1484167798 -0800"` as ISO 8601 (`2017-01-11T12:49:58-08:00`); other text as it is."""
    match = re.fullmatch(r"(\d+) ([+-])(\d\d)(\d\d)", raw.strip())
    if not match:
        return raw
    seconds, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
    return datetime.fromtimestamp(int(seconds), timezone(offset)).isoformat()
