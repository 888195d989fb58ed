"""The Dagster path over several environments: K worker processes, each running its share of the environments one
after another as Dagster runs (one run per environment), so Dagster and the definitions load once per worker, not
once per environment.

A worker is `dbops -e a,b,… migrate --worker …`: its process environment holds the password variables of its own
share only. It writes one JSON line per environment on stdout (`{"environment", "exit_code", "seconds", "document",
"log"}`, the document being what `dbops --json -e NAME migrate` prints); the parent turns them into outcomes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dbops.environments import SELECT_VARIABLE, Environment
from dbops.fleet import Outcome, first_line

WORKER_FLAG = "--worker"
# Runs one environment's migrate in this process: (exit code, its --json document as text, its log lines as text).
RunOne = Callable[[Environment], tuple[int, str, str]]
Report = Callable[[Outcome[Any], dict[str, Any]], None]


def shares(environments: Sequence[Environment], parallel: int) -> list[list[Environment]]:
    """Round-robin shares, so each worker starts with the earliest waves."""
    count = max(1, min(parallel, len(environments)))
    return [list(environments[i::count]) for i in range(count)]


def worker_environment(share: Sequence[Environment], declared: dict[str, Environment]) -> dict[str, str]:
    """os.environ without the selection and without the password variables of every environment outside `share`."""
    mine = {e.password_variable for e in share}
    others = {e.password_variable for e in declared.values()} - mine
    return {k: v for k, v in os.environ.items() if k != SELECT_VARIABLE and k not in others}


def through_workers(
    environments: Sequence[Environment],
    parallel: int,
    arguments: Sequence[str],  # the migrate command line (child_arguments)
    declared: dict[str, Environment],
    log: Callable[[Environment, str], None],
    report: Report,
) -> list[Outcome[Any]]:
    """Migrate through Dagster in `parallel` workers; `report(outcome, document)` as each environment finishes
    (serialised); outcomes in the order of `environments`. A worker that dies fails the environments it had left."""
    results: dict[str, Outcome[Any]] = {}
    lock = threading.Lock()

    def finish(outcome: Outcome[Any], document: dict[str, Any]) -> None:
        with lock:
            results[outcome.environment.name] = outcome
            report(outcome, document)

    def drive(share: list[Environment]) -> None:
        by_name = {e.name: e for e in share}
        pending = list(share)
        process = subprocess.Popen(
            [sys.executable, "-m", "dbops.cli", "-e", ",".join(by_name), *arguments, WORKER_FLAG],
            env=worker_environment(share, declared), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

        def relay() -> None:  # lines the worker could not attribute (logging handlers): to its current environment
            for line in process.stderr or ():
                if line.strip():
                    log(pending[0] if pending else share[-1], line.rstrip())

        relaying = threading.Thread(target=relay, daemon=True)
        relaying.start()
        for line in process.stdout or ():
            try:
                line_report = json.loads(line)
                environment = by_name[line_report["environment"]]
            except (ValueError, KeyError, TypeError):
                continue
            pending.remove(environment)
            for logged in str(line_report.get("log", "")).splitlines():
                if logged.strip() and not logged.startswith("error: "):
                    log(environment, logged)
            document = line_report.get("document") or {}
            code = int(line_report.get("exit_code", 1))
            error = first_line(str(document.get("error") or "")) if code else ""
            outcome: Outcome[Any] = Outcome(environment, code, error or ("" if not code else f"exit {code}"), None,
                                            float(line_report.get("seconds", 0.0)))
            finish(outcome, document)
        process.wait()
        relaying.join()
        for environment in pending:
            finish(Outcome(environment, process.returncode or 1,
                           f"the dbops worker process ended (exit {process.returncode}) before migrating it"), {})

    with ThreadPoolExecutor(max_workers=len(shares(environments, parallel)), thread_name_prefix="dbops-worker") as pool:
        list(pool.map(drive, shares(environments, parallel)))
    return [results[e.name] for e in environments]


def serve(environments: Sequence[Environment], run_one: RunOne) -> int:
    """The worker's side: each environment in turn, one JSON line each on stdout; the worst exit code."""
    worst = 0
    for environment in environments:
        started = time.perf_counter()
        code, out, err = run_one(environment)
        try:
            document = json.loads(out) if out.strip() else {}
        except ValueError:
            document = {"error": first_line(out) or "no result"}
        line = {"environment": environment.name, "exit_code": code, "seconds": round(time.perf_counter() - started, 3),
                "document": document, "log": err}
        sys.stdout.write(json.dumps(line, default=str) + "\n")
        sys.stdout.flush()
        worst = max(worst, code)
    return worst
