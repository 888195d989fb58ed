"""The Dagster instance a command opens: its storage probed once, a dagster.yaml Dagster cannot use as one error line
naming where (exit 2), a storage that cannot be used as one line with its cause (exit 3), Dagster's noise kept quiet."""
from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy.exc  # the storage URL's parse errors (SQLAlchemy is dagster-postgres's engine)
import yaml  # dagster.yaml's parse errors (Dagster reads it with PyYAML)
from dagster import DagsterError, DagsterInstance, DagsterInvalidConfigError, DagsterInvariantViolationError
from dagster_shared.check import CheckError  # what Dagster's own checks raise (dagster._check re-exports it)

from dbops.errors import ConfigError, StorageUnavailable
from dbops.orchestration.apply import hold_storage_connection
from dbops.urls import redact

DIRECT = "or migrate with --direct"


@contextmanager
def open_instance(home: Path, hold: bool = True, fallback: str = DIRECT) -> Iterator[DagsterInstance]:
    """The instance at `home`, probed once, holding its storage connections (with `hold`; else the caller holds
    them later, see hold_storage_connection). A dagster.yaml Dagster cannot use is ConfigError naming the line or
    the key; a storage that cannot be used is StorageUnavailable, its advice ending with `fallback`."""
    try:
        instance = DagsterInstance.get()
        if hold:
            hold_storage_connection(instance)
        instance.get_runs(limit=1)
    except Exception as exc:  # storage drivers raise errors of many kinds
        raise (instance_config_problem(home, exc) or storage_failure(home, exc, during_run=False, fallback=fallback)) from None
    with instance:
        yield instance


def instance_config_problem(home: Path, exc: BaseException) -> ConfigError | None:
    """The ConfigError for an instance that failed because of what its dagster.yaml says: YAML that does not parse
    (its line and column), a key or value Dagster's schema refuses (Dagster's message names it), a storage class that
    cannot be loaded, a storage URL SQLAlchemy cannot parse. None for anything else (a storage that cannot be used)."""
    config = instance_config_file(home)
    fix = "fix it there (it is Dagster's instance configuration)"
    links = list(_chain(exc))
    if any(isinstance(link, ImportError) for link in links):  # a storage class whose module is not installed
        return ConfigError(f"{config}: {_first_line(exc).removeprefix('Failure condition: ')}; install the package "
                           "that provides it here, or fix the module and class it names")
    for link in links:
        if isinstance(link, yaml.MarkedYAMLError) and link.problem_mark is not None:
            mark = link.problem_mark
            what = ": ".join(part for part in (link.context, link.problem) if part)
            return ConfigError(f"{config}:{mark.line + 1}:{mark.column + 1}: not valid YAML ({what}); fix the YAML there")
        if isinstance(link, yaml.YAMLError):
            return ConfigError(f"{config}: not valid YAML ({_first_line(link)}); fix the YAML there")
        if isinstance(link, DagsterInvalidConfigError):
            reasons = [e.message.split('. Expected: "')[0].strip() for e in link.errors] or [_first_line(link)]
            return ConfigError(f"{config}: {'; '.join(redact(r) for r in reasons)}; {fix}")
        if isinstance(link, sqlalchemy.exc.ArgumentError):  # a storage URL that does not parse, an unknown dialect
            return ConfigError(f"{config}: {_first_line(link)}; {fix}")
        if isinstance(link, (DagsterInvariantViolationError, CheckError)):  # Dagster's checks of what the file asks for
            return ConfigError(f"{config}: {_first_line(link).removeprefix('Failure condition: ')}; {fix}")
    return None


def instance_config_file(home: Path) -> Path:
    """The instance's configuration file: dagster.yaml (or the dagster.yml Dagster also reads)."""
    yml = home / "dagster.yml"
    return yml if yml.exists() and not (home / "dagster.yaml").exists() else home / "dagster.yaml"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or during, innermost last."""
    link: BaseException | None = exc
    while link is not None:
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def storage_failure(home: Path, exc: BaseException, during_run: bool, fallback: str = DIRECT) -> StorageUnavailable:
    """The one-line error for a Dagster storage that failed, naming the instance, the cause and what to do."""
    what = storage_cause(exc)
    where = f"the Dagster storage of the instance in {home} ({instance_config_file(home)})"
    if during_run:
        return StorageUnavailable(
            f"{where} failed during the run: {what}; the history table has every script applied so far, and the next "
            "dbops migrate records their materializations; check the storage's database, or use --direct meanwhile"
        )
    return StorageUnavailable(
        f"cannot use {where}: {what}; nothing was applied. Check that its database is reachable (the DAGSTER_PG_* "
        f"settings of a deployment; `dbops local start` for the local one){', ' + fallback if fallback else ''}"
    )


def storage_cause(exc: BaseException) -> str:
    """What made the storage fail, in one line without a password: the driver's own error at the bottom of the
    chain (dagster-postgres gives up with "too many retries for DB connection", raised from the last attempt's
    error; SQLAlchemy wraps the driver's), with the wrapper's words after it when they add something."""
    *_, root = _chain(exc)
    root = getattr(root, "orig", None) or root  # SQLAlchemy's DBAPIError: the driver's exception
    what = _first_line(root)
    if root is not exc and not isinstance(exc, DagsterError):
        wrapper = _first_line(exc)
        if wrapper not in what:
            what = f"{what} ({wrapper})"
    return what


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])


class StorageRetryWarnings(logging.Filter):
    """Drops the warnings dagster-postgres logs on the root logger for each storage connection it retries (each
    with the whole SQLAlchemy error): a storage that stays down ends in one `error:` line with the cause instead,
    and one that comes back needed no message. Every other record passes."""

    MESSAGES = ("Retrying failed database connection", "Retrying failed database creation")

    def filter(self, record: logging.LogRecord) -> bool:
        from_dagster_postgres = "dagster_postgres" in record.pathname.replace("\\", "/").split("/")
        return not (record.levelno == logging.WARNING and from_dagster_postgres and str(record.msg).startswith(self.MESSAGES))


@contextmanager
def quiet_dagster(verbose: bool) -> Iterator[None]:
    """Keep Dagster's own warnings and INFO logs, and dagster-postgres's retry warnings, off the terminal unless -v."""
    logger = logging.getLogger("dagster")
    level = logger.level
    retries = StorageRetryWarnings()
    if not verbose:
        logger.setLevel(logging.WARNING)
        logging.getLogger().addFilter(retries)
    with warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)
            logging.getLogger().removeFilter(retries)
