"""A CodeCommit repository played by botocore's Stubber: every request is checked against the service model."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import boto3
from botocore.stub import Stubber

from dbops.scripts import codecommit as codecommit_source

REGION = "eu-west-1"


@dataclass
class FakeCommit:
    id: str
    parents: list[str]
    files: dict[str, bytes]
    message: str
    author: tuple[str, str]
    date: str


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def commit_id(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


@dataclass
class StubbedCodeCommit:
    """Commits of one repository; `expect_*` queue the exact requests the code under test must make."""

    repository: str = "warehouse"
    commits: dict[str, FakeCommit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        codecommit_source.CACHE.items.clear()
        self.client = boto3.client("codecommit", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        self.stubber = Stubber(self.client)
        self.stubber.activate()

    def commit(self, message: str, files: dict[str, bytes | None], author: tuple[str, str] = ("Ada Lovelace", "ada@example.com")) -> str:
        """A new commit on top of the newest one (or a root commit); None deletes a file."""
        parent = list(self.commits)[-1] if self.commits else None
        tree = dict(self.commits[parent].files) if parent else {}
        for path, data in files.items():
            if data is None:
                tree.pop(path)
            else:
                tree[path] = data
        cid = commit_id(len(self.commits) + 1)
        date = f"{1700000000 + 60 * len(self.commits)} +0100"
        self.commits[cid] = FakeCommit(cid, [parent] if parent else [], tree, message, author, date)
        return cid

    def expect_branch(self, branch: str, cid: str) -> None:
        self.stubber.add_response("get_branch", {"branch": {"branchName": branch, "commitId": cid}},
                                  {"repositoryName": self.repository, "branchName": branch})

    def expect_repository(self) -> None:
        self.stubber.add_response("get_repository", {"repositoryMetadata": {
            "repositoryName": self.repository, "defaultBranch": "main",
            "Arn": f"arn:aws:codecommit:{REGION}:123456789012:{self.repository}",
        }}, {"repositoryName": self.repository})

    def expect_commit(self, cid: str) -> None:
        c = self.commits[cid]
        person = {"name": c.author[0], "email": c.author[1], "date": c.date}
        self.stubber.add_response("get_commit", {"commit": {
            "commitId": cid, "treeId": "f" * 40, "parents": c.parents, "message": c.message + "\n",
            "author": person, "committer": person, "additionalData": "",
        }}, {"repositoryName": self.repository, "commitId": cid})

    def expect_differences(self, before: str | None, after: str, page_size: int = 100) -> None:
        old = self.commits[before].files if before else {}
        new = self.commits[after].files
        differences = []
        for path in sorted(set(old) | set(new)):
            if old.get(path) == new.get(path):
                continue
            difference: dict = {"changeType": "A" if path not in old else "D" if path not in new else "M"}
            if path in old:
                difference["beforeBlob"] = {"blobId": blob_id(old[path]), "path": path, "mode": "100644"}
            if path in new:
                difference["afterBlob"] = {"blobId": blob_id(new[path]), "path": path, "mode": "100644"}
            differences.append(difference)
        pages = [differences[i : i + page_size] for i in range(0, len(differences), page_size)] or [[]]
        for number, page in enumerate(pages):
            params = {"repositoryName": self.repository, "afterCommitSpecifier": after}
            if before:
                params["beforeCommitSpecifier"] = before
            if number:
                params["NextToken"] = f"page-{number}"
            reply = {"differences": page}
            if number + 1 < len(pages):
                reply["NextToken"] = f"page-{number + 1}"
            self.stubber.add_response("get_differences", reply, params)

    def expect_folder(self, cid: str, folder: str) -> None:
        prefix = "" if folder == "/" else folder + "/"
        files, subfolders = [], set()
        for path, data in self.commits[cid].files.items():
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest:
                subfolders.add(rest.split("/")[0])
            else:
                files.append({"blobId": blob_id(data), "absolutePath": path, "relativePath": rest, "fileMode": "NORMAL"})
        self.stubber.add_response("get_folder", {
            "commitId": cid, "folderPath": folder, "treeId": "e" * 40, "files": files,
            "subFolders": [{"treeId": "d" * 40, "absolutePath": prefix + name, "relativePath": name} for name in sorted(subfolders)],
        }, {"repositoryName": self.repository, "commitSpecifier": cid, "folderPath": folder})

    def expect_file(self, cid: str, path: str) -> None:
        data = self.commits[cid].files[path]
        self.stubber.add_response("get_file", {
            "commitId": cid, "blobId": blob_id(data), "filePath": path, "fileMode": "NORMAL",
            "fileSize": len(data), "fileContent": data,
        }, {"repositoryName": self.repository, "commitSpecifier": cid, "filePath": path})

    def expect_error(self, method: str, code: str, message: str, params: dict) -> None:
        self.stubber.add_client_error(method, service_error_code=code, service_message=message, http_status_code=400, expected_params=params)
