"""Run one piece of work on each of several environments, K at a time; one environment's failure never touches another's.

Each environment gets its own engine: its own connection, run lock and history table. The worst exit code of
the environments is the fleet's (0 when all succeeded).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from dbops.config import Settings
from dbops.engine.engine import Engine
from dbops.engine.history import History
from dbops.engine.plan import FAILED
from dbops.environments import Environment, with_password_hint
from dbops.errors import ConnectError, DbopsError
from dbops.scripts.sources import FolderSource, Snapshot
from dbops.targets import open_target
from dbops.urls import redact

T = TypeVar("T")
UNREACHABLE = "unreachable"
FAILED_STATUS = "failed"
OK = "ok"


@dataclass
class Outcome(Generic[T]):
    """What became of one environment: its exit code (0: fine), the first line of its error, and the work's value."""

    environment: Environment
    exit_code: int = 0
    error: str = ""
    value: T | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def status(self) -> str:
        """ok, failed, or unreachable (it could not be connected to)."""
        return OK if self.ok else status_of(self.exit_code, self.error)


def status_of(exit_code: int, error: str) -> str:
    """`unreachable` for a failed connection (exit 3, "cannot connect …"), `failed` for any other error, else ok."""
    if exit_code == 0:
        return OK
    return UNREACHABLE if exit_code == ConnectError.exit_code and error.startswith("cannot connect") else FAILED_STATUS


def first_line(message: str) -> str:
    """The first non-empty line of an error message (with the next one when it ends in `:`), passwords hidden."""
    lines = [line.strip() for line in redact(message).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else ""


def run_each(
    environments: Sequence[Environment],
    work: Callable[[Environment], T],
    parallel: int = 1,
    on_done: Callable[[Outcome[T]], None] | None = None,
) -> list[Outcome[T]]:
    """`work(environment)` for each environment, `parallel` at a time (threads), outcomes in the given order.
    A DbopsError gives its exit code; any other exception exit 1 with its type; neither stops the others."""
    lock = threading.Lock()

    def one(environment: Environment) -> Outcome[T]:
        started = time.perf_counter()
        outcome: Outcome[T] = Outcome(environment)
        try:
            outcome.value = work(environment)
        except DbopsError as exc:
            exc = with_password_hint(environment, exc)
            outcome.exit_code, outcome.error = exc.exit_code, first_line(str(exc))
        except Exception as exc:  # one environment's unexpected error must not stop the others
            outcome.exit_code, outcome.error = 1, first_line(f"{type(exc).__name__}: {exc}")
        outcome.seconds = time.perf_counter() - started
        if on_done is not None:
            with lock:
                on_done(outcome)
        return outcome

    if parallel <= 1 or len(environments) <= 1:
        return [one(env) for env in environments]
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="dbops-env") as pool:
        return list(pool.map(one, environments))


def worst_exit_code(outcomes: Sequence[Outcome[Any]]) -> int:
    """0 when every environment succeeded, else the highest exit code among them."""
    return max((o.exit_code for o in outcomes), default=0)


class Snapshots:
    """The scripts, read once per set of locations and shared by the environments' engines (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[tuple[str, ...], Snapshot] = {}

    def of(self, settings: Settings) -> Snapshot:
        key = tuple(settings.locations)
        with self._lock:
            if key not in self._read:
                self._read[key] = FolderSource(settings.locations).snapshot()
            return self._read[key]


def engine_for(environment: Environment, settings: Settings, values_needed: bool = True, snapshots: Snapshots | None = None) -> Engine:
    """An engine on the environment's own target (its own password), with `settings` (see settings_for)."""
    snapshot = snapshots.of(settings) if snapshots else None
    return Engine(open_target(environment.target_url()), settings, snapshot=snapshot, values_needed=values_needed)


@dataclass(frozen=True)
class Status:
    """Where one environment stands: the `info` row of a fleet."""

    latest_version: str | None
    pending: int
    failed: int
    last_applied_at: datetime | None
    last_script: str
    commit: str  # of the run that applied the last script, from the audit table ('' when unknown)
    run_id: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "latest_version": self.latest_version,
            "pending": self.pending,
            "failed": self.failed,
            "last_applied_at": self.last_applied_at.isoformat(sep=" ") if self.last_applied_at else None,
            "last_script": self.last_script or None,
            "commit": self.commit or None,
            "run_id": self.run_id or None,
        }


def status_of_engine(engine: Engine) -> Status:
    """The latest applied version, how many scripts are pending and failed, and who applied the last one when."""
    plan = engine.plan(failures=True)
    applied = [e for e in plan.entries if e.applied is not None and e.applied.success]
    versioned = [e for e in applied if e.applied is not None and e.applied.version]
    last = max(applied, key=lambda e: e.applied.installed_rank if e.applied else 0, default=None)
    failed = sum(1 for e in plan.entries if e.state == FAILED or (e.is_pending and e.last_failure is not None))
    commit = run_id = ""
    if last is not None and last.applied is not None:
        with engine.session() as session:
            attempts = History(session, engine.settings.schema, engine.settings.table).successful_attempts()
            session.rollback()
        attempt = attempts.get((last.applied.script, last.applied.checksum))
        if attempt is not None:
            commit, run_id = attempt.commit_id or "", attempt.run_id or ""
    return Status(
        latest_version=versioned[-1].version if versioned else None,
        pending=len(plan.pending()),
        failed=failed,
        last_applied_at=last.applied.installed_on if last and last.applied else None,
        last_script=last.script if last else "",
        commit=commit,
        run_id=run_id,
    )
