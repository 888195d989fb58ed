"""The `dbops` command."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import logging
import os
import sys
import time
import zlib

from dbops.config import Settings, settings_from, timeout_problem, url_from
from dbops.engine.applier import RunInfo, ScriptResult
from dbops.engine.engine import Engine
from dbops.environments import Environment, refuse_shared_password, selected, settings_for, with_password_hint
from dbops.errors import ConfigError, DbopsError
from dbops.output import Console, describe_attempt, entry_json, print_checks, print_results, result_json
from dbops.scripts.sources import CommitInfo, FolderSource
from dbops.targets import open_target
from dbops.urls import redact


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with our wording
        self.print_usage(sys.stderr)
        raise ConfigError(f"{message} (see `dbops --help`)")


def _seconds(value: str, statement: bool = False) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    problem = timeout_problem(number, statement)
    if problem:
        raise argparse.ArgumentTypeError(f"{value!r} {problem}")
    return number


def _lock_seconds(value: str) -> float:
    return _seconds(value)


def _statement_seconds(value: str) -> float:
    return _seconds(value, statement=True)


def _parallel(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of environments, 1 or more")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="database URL (DBOPS_URL); none: the embedded database")
    common.add_argument("-e", "--environment", default=argparse.SUPPRESS, metavar="SELECTOR",
                        help="flyway.toml environment(s) (DBOPS_ENVIRONMENT): a name, a glob (tenant-*), a tag (region=eu-west-1)")
    common.add_argument("--locations", default=argparse.SUPPRESS, help="comma-separated script folders (DBOPS_LOCATIONS, default sql)")
    common.add_argument("--schema", default=argparse.SUPPRESS, help="default schema: where the history table and unqualified names in scripts go (default public)")
    common.add_argument("--table", default=argparse.SUPPRESS, help="history table (default flyway_schema_history)")
    common.add_argument("--placeholder", action="append", default=argparse.SUPPRESS, metavar="K=V", help="placeholder value, repeatable")
    common.add_argument("--ignore-invalid-names", action="store_true", default=argparse.SUPPRESS, help="warn about, and skip, badly named .sql files")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON document on stdout")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more")

    parser = _Parser(prog="dbops", description="Database migrations from source control.", parents=[common])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    migrate = commands.add_parser("migrate", parents=[common], help="apply pending migrations")
    migrate.add_argument("--target", help="stop at this version")
    migrate.add_argument("--dry-run", action="store_true", help="print the SQL that would run; change nothing")
    migrate.add_argument("--out-of-order", action="store_true", help="also apply scripts older than the latest applied one")
    migrate.add_argument("--mixed", action="store_true", help="allow scripts that mix non-transactional and transactional statements")
    migrate.add_argument("--direct", action="store_true", help="run the engine without Dagster")
    migrate.add_argument("--lock-timeout", type=_lock_seconds, default=600.0, help="seconds to wait for the run lock (default 600)")
    migrate.add_argument("--statement-timeout", type=_statement_seconds, help="seconds one statement may run")
    migrate.add_argument("--commit", default=os.environ.get("DBOPS_COMMIT", ""), help="commit id to record")
    migrate.add_argument("--author", default=os.environ.get("DBOPS_AUTHOR", ""), help="commit author to record")
    migrate.add_argument("--message", default=os.environ.get("DBOPS_MESSAGE", ""), help="commit message to record")
    migrate.add_argument("--source", default=os.environ.get("DBOPS_SOURCE", "cli"), help=argparse.SUPPRESS)
    migrate.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # dbops.fleet_workers's processes
    info = commands.add_parser("info", parents=[common], help="show every migration and its state")
    validate = commands.add_parser("validate", parents=[common], help="check applied migrations against the scripts")
    for fleet in (migrate, info, validate):
        fleet.add_argument("--parallel", type=_parallel, default=1, metavar="K", help="with several environments: K at a time (default 1)")
    rollout = commands.add_parser("rollout", parents=[common], help="apply the scripts to the environments wave by wave, through Dagster")
    rollout.add_argument("--parallel", type=_parallel, default=None, metavar="K",
                         help="environments at a time (default DBOPS_ROLLOUT_PARALLEL, else 4)")
    rollout.add_argument("--commit", default=os.environ.get("DBOPS_COMMIT", ""), help="commit id to record (and the rollout's id)")
    rollout.add_argument("--author", default=os.environ.get("DBOPS_AUTHOR", ""), help="commit author to record")
    rollout.add_argument("--message", default=os.environ.get("DBOPS_MESSAGE", ""), help="commit message to record")
    rollout.add_argument("--source", default=os.environ.get("DBOPS_SOURCE", "cli"), help=argparse.SUPPRESS)
    commands.add_parser("lint", parents=[common], help="static checks of the scripts (Redshift dialect)")
    check = commands.add_parser("check", parents=[common], help="run again the checks of applied migrations marked -- dbops:always")
    check.add_argument("--all", action="store_true", help="every check of the applied migrations, not only the -- dbops:always ones")
    commands.add_parser("repair", parents=[common], help="remove failed rows, realign checksums")
    baseline = commands.add_parser("baseline", parents=[common], help="mark an existing database as at a version")
    baseline.add_argument("--version", default="1", help="baseline version (default 1)")
    undo = commands.add_parser("undo", parents=[common], help="apply undo (U) scripts")
    undo.add_argument("--target", help="undo every applied version above this one (default: the latest only)")
    local = commands.add_parser("local", parents=[common], help="manage the embedded database")
    local.add_argument("action", choices=["start", "stop", "status", "url"])
    commands.add_parser("ui", parents=[common], help="open the Dagster UI on this project")
    review = commands.add_parser("review", parents=[common], help="everything a pull request needs: integrity, lint, plan, scratch build")
    review.add_argument("--base", help="git branch, tag or commit to review the work tree against (e.g. main)")
    review.add_argument("--scratch-url", default=os.environ.get("DBOPS_SCRATCH_URL"),
                        help="server for the throwaway build database (DBOPS_SCRATCH_URL; default: the embedded PostgreSQL, "
                             "or a Redshift target's own cluster)")
    review.add_argument("--out-of-order", action="store_true", help="allow added versions below the latest one")
    review.add_argument("--markdown", action="store_true", help="print the report as Markdown (a pull-request comment)")
    review.add_argument("--no-scratch", action="store_true", help="skip the scratch build")
    publish = commands.add_parser("publish-review", parents=[common], help="post a `dbops review --json` report on a CodeCommit pull request, with its verdict as an approval")
    publish.add_argument("--pull-request", default=os.environ.get("DBOPS_PULL_REQUEST_ID", ""), help="pull request id (DBOPS_PULL_REQUEST_ID)")
    publish.add_argument("--report", required=True, help="the file `dbops review --json` wrote")
    publish.add_argument("--repository", default=os.environ.get("DBOPS_CODECOMMIT_REPOSITORY") or None, help="repository of the pull request (DBOPS_CODECOMMIT_REPOSITORY)")
    publish.add_argument("--commit", default="", help="source commit reviewed; nothing is published when the pull request has moved on")
    return parser


def settings_of(args: argparse.Namespace, environment: Environment | None = None) -> Settings:
    """The command's settings (of `environment`, else of the command's); `--target` is a migrate setting (undo reads its own)."""
    flags = vars(args)
    if args.command != "migrate":
        flags = {k: v for k, v in flags.items() if k != "target"}
    environment = environment or getattr(args, "env", None)
    return settings_for(environment, flags) if environment else settings_from(flags)


def target_url(args: argparse.Namespace) -> str | None:
    """The URL the command connects to: its environment's (with that environment's own password), else --url/DBOPS_URL."""
    environment: Environment | None = getattr(args, "env", None)
    return environment.target_url() if environment else url_from(vars(args))


def _engine(args: argparse.Namespace, console: Console) -> Engine:
    listing = args.command in ("info", "validate")  # Flyway lists and compares scripts without placeholder values
    engine = Engine(open_target(target_url(args)), settings_of(args), values_needed=not listing)
    for warning in engine.catalog.warnings:
        console.log(f"warning: {warning}")
    return engine


def cmd_migrate(args: argparse.Namespace, console: Console) -> int:
    engine = _engine(args, console)
    target = engine.target.redacted_url
    commit = CommitInfo(id=args.commit, author=args.author, message=args.message) if args.commit or args.author or args.message else None
    if args.dry_run:
        todo = engine.dry_run()
        if console.as_json:
            console.json({"pending": [{"script": e.script, "version": e.version, "sql": e.migration.sql} for e in todo], "target": target})
            return 0
        for entry in todo:
            m = entry.migration
            mode = "in a transaction" if m.in_transaction_on(engine.dialect) else "in autocommit, statement by statement"
            console.result(f"-- {m.path} ({mode})\n{m.sql.rstrip()}\n")
        console.result(f"{len(todo)} migration(s) would be applied to {target}; nothing was changed.")
        return 0
    started = time.perf_counter()
    if not args.direct:
        plan = engine.plan()  # validated by launch_migrate, after it has cleaned up what a killed run left
        from dbops.orchestration.launch import launch_migrate

        environment = args.env.name if getattr(args, "env", None) else None
        return launch_migrate(engine, plan, console, url=target_url(args), source=args.source, commit=commit, environment=environment)
    run = RunInfo(source=args.source, commit=commit)
    results: list[ScriptResult] = []
    pending = len(engine.plan().pending()) if console.tty else 0
    with console.progress(pending) as advance:
        for result in engine.migrate(run=run, on_event=console.log):
            results.append(result)
            advance(result.migration.script)
            if not console.tty and not console.as_json:
                console.result(f"applied {result.migration.path} ({result.statements} statements, {result.execution_ms} ms)")
    print_results(console, results, target, time.perf_counter() - started, None)
    return 0


def cmd_info(args: argparse.Namespace, console: Console) -> int:
    engine = _engine(args, console)
    plan = engine.plan(failures=True)
    info = engine.target.info()
    if console.as_json:
        console.json({"migrations": [entry_json(e) for e in plan.entries], "target": info.url, "ssl": info.ssl})
    else:
        console.plan(plan, info.url, info.ssl, engine.dialect)
    return 0


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """Exit 1 on problems; a pending script whose last attempt failed is only a warning (it is still pending)."""
    engine = _engine(args, console)
    plan = engine.plan(failures=True)
    problems = plan.problems()
    warnings = [describe_attempt(e) for e in plan.failed_attempts() if e.is_pending]
    for warning in warnings:
        console.log(f"warning: {warning}")
    if console.as_json:
        console.json({"valid": not problems, "problems": problems, "warnings": warnings, "target": engine.target.redacted_url})
    else:
        for problem in problems:
            console.result(f"error: {problem}")
        if not problems:
            pending = len(plan.pending())
            console.result(f"Validated {len(engine.catalog.migrations)} script(s) against {engine.target.redacted_url}: OK ({pending} pending).")
    return 1 if problems else 0


def cmd_lint(args: argparse.Namespace, console: Console) -> int:
    """Static checks; needs no database, and placeholders without a value stand in as their names."""
    from dbops.lint.cache import LintCache
    from dbops.lint.checks import counts, lint_files

    settings = settings_of(args)
    snapshot = FolderSource(settings.locations).snapshot()
    catalog, findings = lint_files(snapshot.files, settings.placeholders, settings.ignore_invalid_names, LintCache.default())
    for warning in catalog.warnings:
        console.log(f"warning: {warning}")
    total = counts(findings)
    scripts = len(catalog.migrations) + len(catalog.undo) + len(catalog.baseline) + len(catalog.callbacks)
    if console.as_json:
        console.json({"findings": [f.as_dict() for f in findings], "scripts": scripts,
                      "errors": total["error"], "warnings": total["warning"], "info": total["info"]})
    else:
        for finding in findings:
            console.result(str(finding))
        console.result(
            f"{scripts} script(s): {total['error']} error(s), {total['warning']} warning(s), {total['info']} info."
        )
    return 1 if total["error"] else 0


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    """Exit 1 when a check of an applied migration returns rows (or cannot run)."""
    from dbops.engine.recheck import applied_checks, recheck

    engine = _engine(args, console)
    results = recheck(engine, applied_checks(engine, every=args.all))
    print_checks(console, [(r.migration.script, r.outcome) for r in results], engine.target.redacted_url)
    return 1 if any(not r.outcome.passed for r in results) else 0


def cmd_repair(args: argparse.Namespace, console: Console) -> int:
    engine = _engine(args, console)
    actions = engine.repair()
    if console.as_json:
        console.json({"actions": actions, "target": engine.target.redacted_url})
    else:
        for action in actions:
            console.result(action)
        console.result("Repair: nothing to do." if not actions else f"Repair: {len(actions)} change(s).")
    return 0


def cmd_baseline(args: argparse.Namespace, console: Console) -> int:
    engine = _engine(args, console)
    engine.baseline(args.version)
    if console.as_json:
        console.json({"baseline": args.version, "target": engine.target.redacted_url})
    else:
        console.result(f"Baselined {engine.target.redacted_url} at version {args.version}.")
    return 0


def cmd_undo(args: argparse.Namespace, console: Console) -> int:
    engine = _engine(args, console)
    results = engine.undo(args.target)
    if console.as_json:
        console.json({"undone": [result_json(r) for r in results], "target": engine.target.redacted_url})
    else:
        for r in results:
            console.result(f"undid version {r.migration.version} with {r.migration.path} ({r.execution_ms} ms)")
        console.result(f"Undo: {len(results)} version(s) undone.")
    return 0


def cmd_local(args: argparse.Namespace, console: Console) -> int:
    from dbops.targets.embedded import EmbeddedDatabase

    db = EmbeddedDatabase.default()
    if args.action == "start":
        from dbops.orchestration.home import dagster_home

        url = db.url(db.start())
        message = f"embedded database running: {url}; Dagster instance: {dagster_home()}"
    elif args.action == "stop":
        url = ""
        message = "embedded database stopped" if db.stop() else "embedded database was not running"
    else:
        socket_dir = db.running_socket_dir()
        if args.action == "url":
            socket_dir = socket_dir or db.start()
        url = db.url(socket_dir) if socket_dir else ""
        message = url if args.action == "url" else (f"running: {url}" if url else f"stopped (data in {db.pgdata})")
    if console.as_json:
        console.json({"action": args.action, "running": bool(db.running_socket_dir()), "url": url, "pgdata": str(db.pgdata)})
    else:
        console.result(message)
    return 0


def cmd_rollout(args: argparse.Namespace, console: Console) -> int:
    """Every selected environment (default: all of flyway.toml's), wave by wave, as Dagster runs; exit 1 when a
    failure stopped a wave."""
    from dbops.environments import SELECT_VARIABLE, load_file, select
    from dbops.orchestration.rollout import parallel_limit
    from dbops.orchestration.rollout_launch import launch_rollout

    if getattr(args, "url", None) or os.environ.get("DBOPS_URL"):
        raise ConfigError("dbops rollout migrates flyway.toml's environments; drop --url/DBOPS_URL (use dbops migrate for one URL)")
    declared = load_file()
    if not declared.environments:
        raise ConfigError(f"{declared.path}: no environments to roll out to; declare [environments.<name>] tables (see README: Environments)")
    pattern = getattr(args, "environment", None) or os.environ.get(SELECT_VARIABLE)
    environments = select(declared.environments, pattern) if pattern else list(declared.environments.values())
    refuse_shared_password(environments)
    scripts = rollout_scripts(environments, vars(args), str(declared.path))
    commit = CommitInfo(id=args.commit, author=args.author, message=args.message) if args.commit else None
    return launch_rollout(console, environments, scripts, parallel=args.parallel or parallel_limit(), commit=commit,
                          source=args.source, flags=vars(args))


def rollout_scripts(environments: list[Environment], flags: dict, toml: str) -> list[tuple[str, int | None]]:
    """What a rollout applies where, for its id: each environment's scripts (its own locations) and placeholder values,
    so a rerun after any of them changed is a new rollout. A location that cannot be read names its environment."""
    read: dict[tuple[str, ...], list[tuple[str, int | None]]] = {}
    scripts: set[tuple[str, int | None]] = set()
    for environment in environments:
        settings = settings_for(environment, flags)
        locations = tuple(settings.locations)
        if locations not in read:
            try:
                read[locations] = [(f.display_path, zlib.crc32(f.data)) for f in FolderSource(settings.locations).snapshot().files]
            except DbopsError as exc:
                raise ConfigError(f"environment {environment.name} ({toml}): {exc}") from None
        scripts.update(read[locations])
        if settings.placeholders:
            values = "\n".join(f"{k}={v}" for k, v in sorted(settings.placeholders.items()))
            scripts.add((f"placeholders of {environment.name}", int.from_bytes(hashlib.sha256(values.encode()).digest()[:4], "big")))
    return sorted(scripts, key=lambda item: (item[0], item[1] or 0))


def cmd_ui(args: argparse.Namespace, console: Console) -> int:
    from dbops.orchestration.launch import open_ui

    return open_ui(console, settings_of(args), target_url(args))


FLEET_COMMANDS = ("migrate", "info", "validate")


def run_fleet(args: argparse.Namespace, console: Console, environments: list[Environment], argv: list[str]) -> int:
    """migrate, info or validate over several environments (dbops.fleet_commands); other commands take one."""
    from dbops.fleet_commands import fleet_info, fleet_migrate, fleet_validate

    if args.command not in FLEET_COMMANDS:
        names = ", ".join(e.name for e in environments[:5]) + (", …" if len(environments) > 5 else "")
        raise ConfigError(f"{args.command} works on one environment at a time, and the selection picks {len(environments)} "
                          f"({names}); name one with -e NAME")

    def settings(environment: Environment) -> Settings:
        return settings_of(args, environment)

    def migrate_one(environment: Environment) -> tuple[int, str, str]:
        """One environment's `--json migrate` in this process (a fleet worker's step): exit code, stdout, stderr."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            one = Console(as_json=True, verbose=console.verbose)
            try:
                code = cmd_migrate(argparse.Namespace(**{**vars(args), "env": environment}), one)
            except DbopsError as exc:
                exc = with_password_hint(environment, exc)
                one.error(redact(str(exc)), exc.exit_code)
                code = exc.exit_code
            except Exception as exc:  # one environment's unexpected error must not stop the worker's others
                one.error(redact(f"{type(exc).__name__}: {exc}"), 1)
                code = 1
        return code, out.getvalue(), err.getvalue()

    if args.command == "migrate":
        return fleet_migrate(args, console, environments, settings, argv, migrate_one)
    run = fleet_info if args.command == "info" else fleet_validate
    return run(console, environments, settings, args.parallel)


def cmd_review(args: argparse.Namespace, console: Console) -> int:
    """Exit 0 when the branch may merge, 1 when a finding blocks it."""
    from dbops.review import report
    from dbops.review.review import run_review

    review = run_review(settings_of(args), args.base, target_url(args), args.scratch_url,
                        build=not args.no_scratch, log=console.log)
    if console.as_json:
        console.json(report.as_json(review))
    elif args.markdown:
        print(report.markdown(review), end="")
    else:
        report.show(console, review)
    return 0 if review.may_merge else 1


def cmd_publish_review(args: argparse.Namespace, console: Console) -> int:
    from pathlib import Path

    from dbops.scripts.pull_requests import PullRequests, Review, publish_review

    if not args.pull_request:
        raise ConfigError("publish-review needs --pull-request ID (or DBOPS_PULL_REQUEST_ID)")
    review = Review.load(Path(args.report))
    published = publish_review(PullRequests.connect(), args.pull_request, review, commit=args.commit,
                               repository=args.repository, build_url=os.environ.get("CODEBUILD_BUILD_URL", ""))
    if console.as_json:
        console.json(published.as_dict())
    else:
        console.result(published.describe())
    return 0


COMMANDS = {
    "migrate": cmd_migrate,
    "info": cmd_info,
    "validate": cmd_validate,
    "lint": cmd_lint,
    "check": cmd_check,
    "repair": cmd_repair,
    "baseline": cmd_baseline,
    "undo": cmd_undo,
    "local": cmd_local,
    "ui": cmd_ui,
    "review": cmd_review,
    "publish-review": cmd_publish_review,
    "rollout": cmd_rollout,
}


def main(argv: list[str] | None = None) -> int:
    """Entry point: run a command, turn user errors into a message and an exit code."""
    argv = sys.argv[1:] if argv is None else argv
    console = Console(as_json="--json" in argv)  # a bad command line still gets its JSON error document
    environment: Environment | None = None
    try:
        args = build_parser().parse_args(argv)
        console = Console(as_json=getattr(args, "json", False), verbose=getattr(args, "verbose", False))
        logging.basicConfig(level=logging.INFO if console.verbose else logging.WARNING, stream=sys.stderr)
        if args.command not in ("local", "rollout"):
            environments = selected(vars(args))
            if environments is not None and (len(environments) > 1 or getattr(args, "worker", False)):
                return run_fleet(args, console, environments, argv)
            args.env = environment = environments[0] if environments else None
        return COMMANDS[args.command](args, console)
    except DbopsError as exc:
        exc = with_password_hint(environment, exc) if environment else exc
        console.error(redact(str(exc)), exc.exit_code)
        return exc.exit_code
    except KeyboardInterrupt:
        console.error("interrupted", 130)
        return 130
    except BrokenPipeError:  # `dbops info | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        return 141  # as a process ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
