"""DbopsResource: where and how the Dagster jobs migrate (the target, the scripts, the run settings)."""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    ConfigurableResource,
    EnvVar,
)
from pydantic import Field

from dbops.config import DEFAULT_TABLE, PLACEHOLDER_PREFIX, Settings, check_timeouts, env_placeholders, settings_from
from dbops.engine.engine import Engine
from dbops.environments import Environment, load_environments, settings_for
from dbops.errors import ConfigError, DbopsError
from dbops.orchestration.apply import apply_pending, failure, hold_storage_connection
from dbops.orchestration.partitions import environment_of
from dbops.orchestration.project import MigrationProject
from dbops.orchestration.tags import source_for_tags
from dbops.orchestration.translator import MigrationTranslator
from dbops.orchestration.warehouse import ScriptLineage
from dbops.scripts.sources import FolderSource
from dbops.targets import open_target
from dbops.targets.base import Dialect, Target
from dbops.urls import scheme_of


class DbopsResource(ConfigurableResource):
    """The database and the settings of a migrate or validate run.

    Secrets never live in this config: the URL and password come from `EnvVar`s (`DBOPS_URL`,
    `DBOPS_PASSWORD`), and `DBOPS_PLACEHOLDER_<NAME>` variables are read when a run starts.
    """

    url: str | None = Field(default=None, description="Database URL; unset: the embedded database")
    password: str | None = Field(default=None, description="Password for a URL without one (use EnvVar)")
    locations: list[str] = Field(default_factory=lambda: ["sql"], description="Script folders")
    history_schema: str = Field(
        default="public", description="Default schema: the history and audit tables', and the scripts' unqualified names"
    )
    schemas: list[str] = Field(default_factory=list, description="Schemas to create when missing (flyway.schemas)")
    history_table: str = Field(default=DEFAULT_TABLE, description="Name of the history table")
    placeholders: dict[str, str] = Field(default_factory=dict, description="Placeholder values (not secrets)")
    lock_timeout: float = Field(default=600.0, description="Seconds to wait for the run lock")
    statement_timeout: float | None = Field(default=None, description="Seconds one statement may run")
    out_of_order: bool = False
    mixed: bool = False
    target_version: str | None = Field(default=None, description="Stop at this version")
    ignore_invalid_names: bool = False
    environments_file: str | None = Field(
        default=None, description="flyway.toml holding the environments (unset: DBOPS_FLYWAY_TOML, else ./flyway.toml)"
    )

    @classmethod
    def from_env(cls, **overrides: Any) -> DbopsResource:
        """The resource as the environment (DBOPS_*) and ./flyway.conf describe it, secrets as EnvVars.

        DBOPS_PLACEHOLDER_* values stay out of the config (they may be secrets); `settings()` reads them when a
        run starts."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(PLACEHOLDER_PREFIX)}
        values: dict[str, Any] = resource_values(settings_from(environ=environ))
        if os.environ.get("DBOPS_URL"):
            values["url"] = EnvVar("DBOPS_URL")
        if os.environ.get("DBOPS_PASSWORD"):
            values["password"] = EnvVar("DBOPS_PASSWORD")
        values.update(overrides)
        return cls(**values)

    @property
    def dialect(self) -> Dialect:
        """The dialect the URL names (the engine detects the real one from the server)."""
        return Dialect.REDSHIFT if scheme_of(self.url or "") == "redshift" else Dialect.POSTGRESQL

    def settings(self) -> Settings:
        """Engine settings; DBOPS_PLACEHOLDER_* values of the running process override configured ones."""
        placeholders = dict(self.placeholders)
        placeholders.update(env_placeholders())
        return check_timeouts(Settings(
            locations=list(self.locations),
            schema=self.history_schema,
            schemas=list(self.schemas),
            table=self.history_table,
            placeholders=placeholders,
            ignore_invalid_names=self.ignore_invalid_names,
            out_of_order=self.out_of_order,
            mixed=self.mixed,
            target_version=self.target_version,
            lock_timeout=self.lock_timeout,
            statement_timeout=self.statement_timeout,
        ))

    def environments(self) -> dict[str, Environment]:
        """The environments of the flyway.toml this resource points at ({} when there is none)."""
        return load_environments(self.environments_file)

    def environment(self, name: str) -> Environment:
        """One environment by name; an unknown name is a ConfigError naming the file."""
        environments = self.environments()
        if name not in environments:
            raise ConfigError(
                f"environment {name!r} is not in {self.environments_file or 'flyway.toml'} (known: {', '.join(environments) or 'none'}); "
                "add [environments.<name>] there and reload the code location"
            )
        return environments[name]

    def environment_settings(self, environment: Environment) -> Settings:
        """An environment's settings (its schemas, placeholders, Flyway overrides; DBOPS_* variables first) with
        this resource's run options (lock and statement timeouts, target, out-of-order, mixed)."""
        settings = settings_for(environment)
        settings.lock_timeout = self.lock_timeout
        settings.statement_timeout = self.statement_timeout
        settings.target_version = self.target_version or settings.target_version
        settings.out_of_order = settings.out_of_order or self.out_of_order
        settings.mixed = settings.mixed or self.mixed
        settings.ignore_invalid_names = settings.ignore_invalid_names or self.ignore_invalid_names
        return check_timeouts(settings)

    def engine(self, context: AssetExecutionContext | AssetCheckExecutionContext, project: MigrationProject | None = None) -> Engine:
        """The engine of this run: its target, and the scripts its tags name (a repository commit, else the
        folders: those `project` loaded them from when given, else read when first needed). Assets and checks all
        build their engine here. A run of one environment (its partition, or its dbops/environment tag) connects
        with that environment's URL and its own credentials only."""
        tags = dict(context.run.tags)
        name = environment_of(tags)
        if name is None:
            settings = self.settings()
            return Engine(self.open_target(), settings, **self._scripts(tags, settings, project))
        environment = self.environment(name)
        if os.environ.get("DBOPS_PASSWORD"):
            raise ConfigError(
                f"DBOPS_PASSWORD is set in the process running environment {name}, which takes its password from "
                f"{environment.password_variable} (or its secret): unset DBOPS_PASSWORD there"
            )
        settings = self.environment_settings(environment)
        return Engine(open_target(environment.target_url()), settings, **self._scripts(tags, settings, project))

    @staticmethod
    def _scripts(tags: dict[str, str], settings: Settings, project: MigrationProject | None) -> dict[str, Any]:
        """The Engine's scripts: the loaded ones for a run of the folders they came from, else the tags' source."""
        source = source_for_tags(tags, settings.locations)
        loaded = project.files_of(settings.locations) if project is not None and isinstance(source, FolderSource) else None
        return {"snapshot": loaded} if loaded is not None else {"source": source}

    def migrate(
        self,
        context: AssetExecutionContext,
        translator: MigrationTranslator,
        known: set[AssetKey],
        lineage: ScriptLineage | None = None,
        project: MigrationProject | None = None,
    ) -> Iterator[AssetMaterialization | AssetObservation | AssetCheckResult]:
        """Apply the run's selection and stream its events: a materialization per applied script (late ones
        first), then observations of the tables they touched — as dagster-dbt's `DbtCliResource.cli(...).stream()`.
        A failure is a step failure carrying the message and the exit code `--direct` would give. `project`: the
        loaded scripts (see `engine`)."""
        hold_storage_connection(context.instance)
        try:
            engine = self.engine(context, project)
        except DbopsError as exc:
            raise failure(exc) from None
        yield from apply_pending(context, engine, translator, known, lineage)

    def open_target(self) -> Target:
        """The database; a configured password reaches the drivers as DBOPS_PASSWORD, as on the command line."""
        if self.password and os.environ.get("DBOPS_PASSWORD") != self.password:
            os.environ["DBOPS_PASSWORD"] = self.password
        return open_target(self.url)


def resource_values(settings: Settings) -> dict[str, Any]:
    """The resource's config fields for `settings` (the inverse of `DbopsResource.settings`, secrets aside)."""
    return {
        "locations": list(settings.locations),
        "history_schema": settings.schema,
        "schemas": list(settings.schemas),
        "history_table": settings.table,
        "placeholders": dict(settings.placeholders),
        "lock_timeout": settings.lock_timeout,
        "statement_timeout": settings.statement_timeout,
        "out_of_order": settings.out_of_order,
        "mixed": settings.mixed,
        "target_version": settings.target_version,
        "ignore_invalid_names": settings.ignore_invalid_names,
    }
