"""A real git repository in a temporary folder, for tests: write files, commit, branch, merge."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


class GitRepo:
    """A git work tree whose commits the tests make one by one."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", f"--initial-branch={branch}")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, author: str = "Ada Lovelace <ada@example.com>") -> str:
        name, _, email = author.partition(" <")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email.rstrip(">"),
            GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email.rstrip(">"),
            GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
        )
        done = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, text=True, env=env, check=True)
        return done.stdout.strip()

    def write(self, files: dict[str, str | bytes | None]) -> None:
        """Write (or, for None, delete) files in the work tree."""
        for name, content in files.items():
            path = self.path / name
            if content is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8", newline="")

    def commit(self, message: str, files: dict[str, str | bytes | None] | None = None, author: str = "Ada Lovelace <ada@example.com>") -> str:
        """Write `files` and commit exactly them (other changes in the work tree stay uncommitted); returns the commit id."""
        self.write(files or {})
        if files:
            self.git("add", "--all", "--", *files)
        self.git("commit", "--quiet", "--allow-empty", "-m", message, author=author)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")
