"""Long-running processes for the tests (webserver, daemon, code server): started, waited on, stopped."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    """POST a query to the Dagster webserver on 127.0.0.1:port; its `data`."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


@dataclass
class Service:
    """A process in its own session, its output in `log`."""

    name: str
    process: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, name: str, command: list[str], cwd: Path, env: dict[str, str], logs: Path) -> Service:
        log = logs / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(name, process, log)

    def tail(self, chars: int = 4000) -> str:
        return f"--- {self.name} ---\n" + (self.log.read_text(errors="replace")[-chars:] if self.log.exists() else "")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def wait_for(what: str, probe: Callable[[], Any], services: list[Service], timeout: float, every: float = 0.5) -> Any:
    """Call `probe` until it returns something truthy; fail with every service's log tail when it never does."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        dead = [s for s in services if not s.alive()]
        if dead:
            break
        time.sleep(every)
    logs = "\n".join(s.tail() for s in services)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})\n{logs}")
