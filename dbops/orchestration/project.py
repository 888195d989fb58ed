"""The scripts a code location loads: discovered once, with each script's statements and lineage."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dbops.config import Settings
from dbops.orchestration.facts_cache import FactsCache
from dbops.orchestration.lineage import ScriptFacts, dialect_for, script_facts
from dbops.paths import dbops_home
from dbops.scripts.migrations import Catalog, Migration, PlaceholderContext, discover
from dbops.scripts.sources import FolderSource, Snapshot
from dbops.targets.base import Dialect


def default_cache_path() -> Path:
    return dbops_home() / "cache" / "script-facts.json"


@dataclass
class MigrationProject:
    """A catalog of scripts plus what each does (statement count, tables touched), by script path."""

    catalog: Catalog
    facts: dict[str, ScriptFacts]
    dialect: Dialect = Dialect.POSTGRESQL
    default_schema: str = "public"
    snapshot: Snapshot | None = None  # the files `load` read the catalog from, in `locations` (with keep_files)
    locations: tuple[str, ...] = ()

    @classmethod
    def load(
        cls, settings: Settings, dialect: Dialect = Dialect.POSTGRESQL, snapshot: Snapshot | None = None, keep_files: bool = False
    ) -> MigrationProject:
        """Discover the scripts of `settings.locations` (or of `snapshot`); naming or placeholder errors raise.

        `keep_files`: for definitions a process builds to run them itself at once (`dbops migrate`, `dbops rollout`'s
        workers), whose runs then apply these files instead of reading the folders again (see `files_of`). A code
        location keeps none: its runs read the folders when they start, scripts added since it loaded included."""
        snapshot = snapshot or FolderSource(settings.locations).snapshot()
        context = PlaceholderContext(values=settings.placeholders, schema=settings.schema, table=settings.table)
        catalog = discover(snapshot.files, context, settings.ignore_invalid_names)
        project = cls.from_catalog(catalog, dialect, default_schema=settings.schema)
        if keep_files:
            project.snapshot, project.locations = snapshot, tuple(settings.locations)
        return project

    @classmethod
    def from_catalog(
        cls, catalog: Catalog, dialect: Dialect = Dialect.POSTGRESQL, default_schema: str = "public", cache: FactsCache | None = None
    ) -> MigrationProject:
        """Facts for each script, from the cache when its text was seen before (default cache: under DBOPS_HOME)."""
        cache = cache if cache is not None else FactsCache(default_cache_path())
        sqlglot_dialect = dialect_for(dialect)
        facts: dict[str, ScriptFacts] = {}
        for migration in catalog.migrations:
            key = cache.key(migration.sql, dialect, default_schema)
            found = cache.get(key)
            if found is None:
                found = script_facts(migration.sql, sqlglot_dialect, default_schema)
                cache.put(key, found)
            facts[migration.path] = found
        cache.save()
        return cls(catalog=catalog, facts=facts, dialect=dialect, default_schema=default_schema)

    def files_of(self, locations: list[str]) -> Snapshot | None:
        """The files loaded, when `locations` are the folders they were read from: a run of those folders applies
        the scripts its definitions were built from (and shares their text) instead of reading the files again."""
        return self.snapshot if self.snapshot is not None and tuple(locations) == self.locations else None

    @property
    def migrations(self) -> list[Migration]:
        """Versioned then repeatable scripts: the assets, in the order migrate applies them."""
        return self.catalog.migrations
